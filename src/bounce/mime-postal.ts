import PostalMime from 'postal-mime';
import { decodeBytes } from './mime-charset.ts';
import type { ReadEmail } from './mime-email.ts';

// postal-mime reads what the lean walker leaves aside (RFC 2231 boundary or charset parameters,
// comments in Content-Type). It copies every part through a Blob, so it is the slow path, and it
// has no limit on the number of parts: a sender's Content-Type comment used to send 100,000 parts
// (5.4 MB) there, 26 s of the inbound role's thread. A part starts at a boundary line, which starts
// with `--`: a message with more such lines than the walker's part limit is refused unread.

export async function readWithPostalMime(
  raw: Uint8Array,
  maxNestingDepth: number,
  maxParts: number,
): Promise<ReadEmail | { error: string }> {
  if (countPartStarts(raw, maxParts) > maxParts)
    return { error: `more than ${maxParts} lines that may start a MIME part` };
  let email;
  try {
    // maxRfc822NestingDepth 0: the quoted original stays an attachment, so its body never
    // mixes with the report text.
    email = await PostalMime.parse(raw, {
      maxNestingDepth,
      maxRfc822NestingDepth: 0,
      attachmentEncoding: 'arraybuffer',
    });
  } catch (error) {
    return { error: (error as Error).message };
  }
  return {
    headers: email.headers.map(({ key, value }) => ({ key, value })),
    subject: email.subject ?? '',
    from: email.from?.address?.toLowerCase() ?? '',
    fromName: email.from?.name ?? '',
    to: (email.to ?? []).flatMap((a) => ('address' in a && a.address ? [a.address.toLowerCase()] : [])),
    text: email.text,
    html: email.html,
    attachments: email.attachments.map((attachment) => ({
      type: attachment.mimeType.toLowerCase(),
      text: () => {
        const content = attachment.content;
        if (typeof content === 'string') return content;
        // No charset from postal-mime here: UTF-8, or ISO-2022-JP by its escapes (decodeBytes).
        return decodeBytes(
          Buffer.from(content instanceof ArrayBuffer ? new Uint8Array(content) : content).toString('latin1'),
          undefined,
        );
      },
    })),
  };
}

/** Lines starting with `--` (the boundary lines that may open a part), counted up to `limit + 1`. */
function countPartStarts(raw: Uint8Array, limit: number): number {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let count = bytes[0] === 0x2d && bytes[1] === 0x2d ? 1 : 0;
  for (let at = bytes.indexOf('\n--'); at >= 0 && count <= limit; at = bytes.indexOf('\n--', at + 3)) count++;
  return count;
}
