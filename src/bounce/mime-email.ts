import { addressParser, decodeWords } from 'postal-mime';
import type { MimeHeader, MimeLeaf } from './mime-walker.ts';

// What the bounce reader needs from a parsed message, whichever parser produced it: the
// top-level headers, the inline text (plain, else HTML) and the other parts, decoded on demand.

export interface ReadEmail {
  headers: MimeHeader[];
  subject: string;
  from: string;
  fromName: string;
  to: string[];
  /** Inline text/plain parts (text/html where an alternative has no plain part). */
  text: string | undefined;
  /** Inline text/html parts, used when there is no plain text. */
  html: string | undefined;
  attachments: { type: string; text(): string }[];
}

export function emailFromLeaves(
  headers: MimeHeader[],
  leaves: MimeLeaf[],
  htmlToText: (html: string) => string,
): ReadEmail {
  // Inline text is gathered per multipart/alternative (one representation of it) or per part,
  // in order of appearance.
  const groups = new Map<object, { plain: string[]; html: string[] }>();
  let plainSeen = false;
  let htmlSeen = false;
  const attachments: ReadEmail['attachments'] = [];
  for (const leaf of leaves) {
    if (!leaf.inline) {
      // In the part's charset; a report part declares none (UTF-8, or ISO-2022-JP by its escapes).
      attachments.push({ type: leaf.type, text: () => leaf.text() });
      continue;
    }
    const key = leaf.alternative ?? leaf;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { plain: [], html: [] }));
    if (leaf.type === 'text/html') {
      group.html.push(leaf.text());
      htmlSeen = true;
    } else {
      group.plain.push(leaf.text());
      plainSeen = true;
    }
  }
  const all = [...groups.values()];
  const text = plainSeen ? all.flatMap((g) => (g.plain.length > 0 ? g.plain : g.html.map(htmlToText))).join('\n') : '';
  const html = htmlSeen ? all.flatMap((g) => g.html).join('\n') : '';
  const fromValue = first(headers, 'from');
  const from = fromValue ? addressParser(fromValue.slice(0, MAX_ADDRESS_HEADER_CHARS))[0] : undefined;
  const subject = first(headers, 'subject');
  return {
    headers,
    subject: subject ? decodeWords(subject) : '',
    from: from?.address?.toLowerCase() ?? '',
    fromName: from?.name ?? '',
    // The fields together, not each: 120 To fields of 16 KiB fit in the header limit.
    to: addressParser(
      headers
        .filter((h) => h.key === 'to' && h.value)
        .map((h) => h.value)
        .join(', ')
        .slice(0, MAX_ADDRESS_HEADER_CHARS),
    ).flatMap((a) => (a.address ? [a.address.toLowerCase()] : [])),
    text: text || undefined,
    html: html || undefined,
    attachments,
  };
}

/**
 * The part of the From field, and of the To fields together, given to postal-mime's address
 * parser, whose time grows faster than the field (a 1.9 MB `To:` of "a: a: …" took 16 s of the
 * inbound role's thread). A real field is a few hundred bytes; 16 KiB holds hundreds of addresses.
 */
export const MAX_ADDRESS_HEADER_CHARS = 16 * 1024;

function first(headers: MimeHeader[], key: string): string | undefined {
  for (const header of headers) if (header.key === key) return header.value;
  return undefined;
}
