import { emailFromLeaves, type ReadEmail } from './mime-email.ts';
import { readWithPostalMime } from './mime-postal.ts';
import { walkMime } from './mime-walker.ts';

// Reads a raw bounce under limits, and exposes what the report parsers need: top-level
// headers, the human-readable text, the machine-readable report parts and the quoted original
// message. The lean walker (mime-walker.ts) reads almost every bounce; postal-mime reads what it
// leaves aside. Broken MIME (missing boundaries, unknown charsets) degrades to the raw body as
// text rather than failing.

export interface MessageParts {
  headers: Map<string, string[]>;
  subject: string;
  from: string;
  fromName: string;
  to: string[];
  /** Human-readable text of the report (inline text parts; raw body when MIME is broken). */
  text: string;
  /** Content of message/delivery-status (and RFC 6533 global) parts. */
  deliveryStatus: string[];
  /** Content of message/feedback-report parts. */
  feedbackReports: string[];
  /** Quoted original messages or their headers (message/rfc822, text/rfc822-headers). */
  originals: string[];
  /** Other text attachments (some MTAs put the diagnostic there). */
  attachedTexts: string[];
}

export interface ReadLimits {
  /** Messages over this size are not parsed (INPUT_TOO_LARGE as a value). */
  maxBytes: number;
  /** Deepest multipart nesting accepted; deeper trees are refused by the MIME parser. */
  maxNestingDepth: number;
  /** Longest text kept from any one part; reports put the diagnostic first. */
  maxTextChars: number;
}

export const DEFAULT_READ_LIMITS: ReadLimits = {
  maxBytes: 25 * 1024 * 1024,
  maxNestingDepth: 32,
  maxTextChars: 256 * 1024,
};

const utf8 = new TextDecoder('utf-8');
// postal-mime's limit on header bytes across all parts, kept for the lean walker; bounces have a
// handful of parts, and each part costs memory whatever its size.
const MAX_HEADER_BYTES = 2 * 1024 * 1024;
const MAX_PARTS = 1000;
// A part is decoded from at most this many raw bytes per kept character (base64 or
// quoted-printable expansion times the widest charsets), so a huge part is never decoded whole
// to keep its first maxTextChars characters.
const BODY_BYTES_PER_CHAR = 12;
// All parts together are decoded from at most this many times one part's share: a report's own
// parts are small, and 400 parts of 60 KB of one-byte base64 units ("QQ=") made the whole 24 MB
// message decoded, 12 s of the inbound role's thread.
const DECODED_PARTS_PER_MESSAGE = 2;

export type ReadResult = { ok: true; parts: MessageParts } | { ok: false; error: string };

/** `postal-mime` forces the slow path (to compare both readers). */
export type MimeParser = 'auto' | 'postal-mime';

export async function readMessage(
  raw: Uint8Array,
  limits: ReadLimits = DEFAULT_READ_LIMITS,
  parser: MimeParser = 'auto',
): Promise<ReadResult> {
  if (raw.byteLength > limits.maxBytes)
    return { ok: false, error: `message of ${raw.byteLength} bytes is over the ${limits.maxBytes}-byte limit` };
  if (raw.byteLength === 0) return { ok: false, error: 'empty message' };
  let email: ReadEmail | { error: string };
  const walked =
    parser === 'auto'
      ? walkMime(raw, {
          maxNestingDepth: limits.maxNestingDepth,
          maxHeaderBytes: MAX_HEADER_BYTES,
          maxParts: MAX_PARTS,
          maxBodyBytes: limits.maxTextChars * BODY_BYTES_PER_CHAR,
          maxDecodedBytes: limits.maxTextChars * BODY_BYTES_PER_CHAR * DECODED_PARTS_PER_MESSAGE,
        })
      : undefined;
  if (walked?.kind === 'refused') email = { error: walked.error };
  else if (walked?.kind === 'ok') email = emailFromLeaves(walked.headers, walked.leaves, stripHtml);
  else email = await readWithPostalMime(raw, limits.maxNestingDepth, MAX_PARTS);
  if ('error' in email) return { ok: false, error: `MIME structure refused: ${email.error}` };
  return { ok: true, parts: toParts(email, raw, limits) };
}

function toParts(email: ReadEmail, raw: Uint8Array, limits: ReadLimits): MessageParts {
  const headers = new Map<string, string[]>();
  for (const header of email.headers) {
    const values = headers.get(header.key) ?? [];
    values.push(header.value);
    headers.set(header.key, values);
  }
  const cap = (s: string): string => (s.length > limits.maxTextChars ? s.slice(0, limits.maxTextChars) : s);
  const parts: MessageParts = {
    headers,
    subject: email.subject,
    from: email.from,
    fromName: email.fromName,
    to: email.to,
    text: cap(email.text ?? (email.html ? stripHtml(email.html) : '')),
    deliveryStatus: [],
    feedbackReports: [],
    originals: [],
    attachedTexts: [],
  };
  for (const attachment of email.attachments) {
    const type = attachment.type;
    // Only the parts a report parser reads are decoded (not images, archives, ...).
    if (
      type === 'message/delivery-status' ||
      type === 'message/global-delivery-status' ||
      type === 'text/delivery-status'
    )
      parts.deliveryStatus.push(cap(attachment.text()));
    else if (type === 'message/feedback-report') parts.feedbackReports.push(cap(attachment.text()));
    else if (
      type === 'message/rfc822' ||
      type === 'text/rfc822-headers' ||
      type === 'message/global' ||
      type === 'message/global-headers'
    )
      parts.originals.push(cap(attachment.text()));
    else if (type.startsWith('text/'))
      parts.attachedTexts.push(type === 'text/html' ? stripHtml(cap(attachment.text())) : cap(attachment.text()));
  }
  if (!parts.text.trim() && parts.deliveryStatus.length === 0 && parts.feedbackReports.length === 0) {
    parts.text = cap(rawBody(raw));
  }
  return parts;
}

/** The body after the header block, for messages whose MIME structure hides their text. */
function rawBody(raw: Uint8Array): string {
  const text = utf8.decode(raw.subarray(0, Math.min(raw.byteLength, 1024 * 1024)));
  const start = text.search(/\r?\n\r?\n/);
  const body = start < 0 ? '' : text.slice(start).replace(/^\r?\n\r?\n/, '');
  // Drop MIME part headers and boundaries that the parser could not use.
  return body
    .split(/\r?\n/)
    .filter(
      (line) =>
        !/^--[-=_A-Za-z0-9.'()+,/:?]{6,}$/.test(line.trim()) &&
        !/^(content-[a-z-]+|mime-version)\s*:/i.test(line) &&
        !/^\s*boundary=/i.test(line),
    )
    .join('\n');
}

/**
 * The text of an HTML part, roughly: enough to read a bounce's wording. Every pattern here stops at
 * the next `<`, and a script or style element ends at the first closing tag found after it, so a
 * sender's run of unclosed tags costs linear time (the earlier `<[^>]+>` and `[\s\S]*?<\/\1>` read
 * to the end of the text from each `<`: seconds for 40,000 of them).
 */
function stripHtml(html: string): string {
  return withoutScripts(html)
    .replace(/<br\s*\/?>|<\/(p|div|tr|li|h\d)>/gi, '\n')
    .replace(/<[^<>]*>/g, ' ')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    .replace(/[ \t]+/g, ' ');
}

/** The HTML without its script and style elements (an unclosed one runs to the end). */
function withoutScripts(html: string): string {
  const opening = /<(script|style)\b[^<>]*>/gi;
  let out = '';
  let from = 0;
  for (let open = opening.exec(html); open; open = opening.exec(html)) {
    out += `${html.slice(from, open.index)} `;
    const closing = new RegExp(`</${open[1]}\\s*>`, 'gi');
    closing.lastIndex = opening.lastIndex;
    const close = closing.exec(html);
    if (!close) return out;
    from = closing.lastIndex;
    opening.lastIndex = from;
  }
  return out + html.slice(from);
}

export function headerValue(parts: MessageParts, name: string): string | undefined {
  return parts.headers.get(name)?.[0];
}
