import { createHash } from 'node:crypto';

// What makes two received messages "the same message": a sender retrying after a 451 (or an ISP
// resending a report) sends the same envelope and the same report again, though a relay on another
// path may add trace headers (Received, RFC 5321 §4.4). So the identity is the envelope recipients
// (the signed VERP address names the log), the report's Message-ID and a hash of the body (the bytes after the header block); a message
// without a Message-ID is identified by all its bytes. Oversized messages are identified by the
// bytes kept and their declared size.

export interface MessageIdentityInput {
  raw: Uint8Array;
  size: number;
  /** The envelope recipients (RCPT TO). */
  rcptTo: readonly string[];
  /** The message's own Message-ID header, when it was parsed. */
  messageId?: string;
}

/** A SHA-256 hex digest naming the message. */
export function inboundMessageIdentity(input: MessageIdentityInput): string {
  const hash = createHash('sha256');
  hash.update(`envelope:${input.rcptTo.map((address) => address.toLowerCase()).join(',')}\n`);
  if (input.messageId) {
    hash.update(`message-id:${input.messageId}\n`);
    hash.update(bodyOf(input.raw));
  } else {
    hash.update(`size:${input.size}\n`);
    hash.update(input.raw);
  }
  return hash.digest('hex');
}

/** The bytes after the first empty line (RFC 5322 §2.1: header fields, an empty line, the body). */
function bodyOf(raw: Uint8Array): Uint8Array {
  const bytes = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const crlf = bytes.indexOf('\r\n\r\n');
  const lf = bytes.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return bytes.subarray(crlf + 4);
  if (lf >= 0) return bytes.subarray(lf + 2);
  return bytes.subarray(bytes.length);
}
