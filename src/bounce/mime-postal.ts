import PostalMime from 'postal-mime';
import { decodeBytes } from './mime-charset.ts';
import { MAX_ADDRESS_HEADER_CHARS, type ReadEmail } from './mime-email.ts';

// postal-mime reads what the lean walker leaves aside (RFC 2231 boundary or charset parameters,
// comments in Content-Type). It copies every part through a Blob, so it is the slow path, and it
// has no limit on the number of parts: a sender's Content-Type comment used to send 100,000 parts
// (5.4 MB) there, 26 s of the inbound role's thread. A part starts at a boundary line, which starts
// with `--`: a message with more such lines than the walker's part limit is refused unread. It
// also gives each From, Sender, Delivered-To, Return-Path, To, Cc, Bcc and Reply-To field of the
// message whole to its address parser, whose time grows faster than the field (a 1.8 MB Cc took
// 20 s): a message whose address fields together pass what the walker reads of them is refused too.

/**
 * postal-mime decodes every part whole, and a line of a report costs it 10 µs (a 22 MB report took
 * 12 s, 0.14 s read by the walker, which decodes only the start of the parts it reads): it is given
 * the message's first 256 KiB, where a report's own parts are, ahead of the quoted original. No
 * bounce of the corpus needs postal-mime at all.
 */
const MAX_READ_BYTES = 256 * 1024;

export async function readWithPostalMime(
  raw: Uint8Array,
  maxNestingDepth: number,
  maxParts: number,
): Promise<ReadEmail | { error: string }> {
  if (countPartStarts(raw, maxParts) > maxParts)
    return { error: `more than ${maxParts} lines that may start a MIME part` };
  if (addressFieldBytes(raw, MAX_ADDRESS_HEADER_CHARS) > MAX_ADDRESS_HEADER_CHARS)
    return { error: `address fields of more than ${MAX_ADDRESS_HEADER_CHARS} bytes` };
  const input = firstBytes(raw, MAX_READ_BYTES);
  let email;
  try {
    // maxRfc822NestingDepth 0: the quoted original stays an attachment, so its body never
    // mixes with the report text.
    email = await PostalMime.parse(input, {
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

/** The fields of the top-level header postal-mime gives to its address parser. */
const ADDRESS_FIELDS = new Set(['from', 'sender', 'delivered-to', 'return-path', 'to', 'cc', 'bcc', 'reply-to']);

/**
 * Bytes of the top-level header's address fields, their folded lines included, counted up to
 * `limit + 1`. Lines end at LF and the header at the first line of nothing but CRs, and a field's
 * name is what precedes its colon without the spaces and tabs around it, as in postal-mime.
 */
function addressFieldBytes(raw: Uint8Array, limit: number): number {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  let total = 0;
  let inAddressField = false;
  for (let at = 0; at < bytes.length && total <= limit; ) {
    const newline = bytes.indexOf(0x0a, at);
    const end = newline < 0 ? bytes.length : newline;
    let last = end;
    while (last > at && bytes[last - 1] === 0x0d) last--;
    if (last === at) break;
    if (bytes[at] !== 0x20 && bytes[at] !== 0x09) {
      let colon = at;
      while (colon < last && bytes[colon] !== 0x3a) colon++;
      inAddressField = ADDRESS_FIELDS.has(bytes.toString('latin1', at, colon).trim().toLowerCase());
    }
    if (inAddressField) total += last - at;
    at = end + 1;
  }
  return total;
}

/** The first `limit` bytes of `raw`, cut after a line break when there is one (postal-mime reads truncated messages). */
function firstBytes(raw: Uint8Array, limit: number): Uint8Array {
  if (raw.byteLength <= limit) return raw;
  const lastBreak = raw.subarray(0, limit).lastIndexOf(0x0a);
  return raw.subarray(0, lastBreak > 0 ? lastBreak + 1 : limit);
}
