// Finds the end of an SMTP DATA section ("\r\n.\r\n", RFC 5321 §4.1.1.4) in a stream of chunks
// without concatenating them: only the last four bytes of the previous chunk are remembered, so a
// terminator split across chunk boundaries is still found and large messages are never copied.

const TERMINATOR = Buffer.from('\r\n.\r\n');
const CRLF = Buffer.from('\r\n');

export class DataEndScanner {
  // The CRLF that ended the DATA command line counts as the first two terminator bytes, so an
  // empty message (".\r\n" right after DATA) is recognised.
  private tail: Buffer = CRLF;

  reset(): void {
    this.tail = CRLF;
  }

  /** Offset in `chunk` just past the terminator, or -1 when the data goes on in a later chunk. */
  scan(chunk: Buffer, from: number): number {
    const head = chunk.subarray(from, Math.min(chunk.length, from + TERMINATOR.length - 1));
    const joined = Buffer.concat([this.tail, head]);
    const acrossBoundary = joined.indexOf(TERMINATOR);
    if (acrossBoundary >= 0) return from + acrossBoundary + TERMINATOR.length - this.tail.length;
    const inside = chunk.indexOf(TERMINATOR, from);
    if (inside >= 0) return inside + TERMINATOR.length;
    const keep = TERMINATOR.length - 1;
    const rest = chunk.length - from;
    this.tail =
      rest >= keep
        ? Buffer.from(chunk.subarray(chunk.length - keep))
        : joined.subarray(Math.max(0, joined.length - keep));
    return -1;
  }
}

/**
 * Turns the bytes received between 354 and the terminator (terminator included) into the message:
 * drops the final ".\r\n" and undoes dot-stuffing (RFC 5321 §4.5.2).
 */
export function messageFromDataBytes(received: Buffer): Buffer {
  const body = received.subarray(0, Math.max(0, received.length - 3));
  const parts: Buffer[] = [];
  let start = 0;
  if (body[0] === 0x2e) start = 1;
  let search = start;
  for (;;) {
    const at = body.indexOf('\r\n.', search);
    if (at < 0) break;
    parts.push(body.subarray(start, at + 2));
    start = at + 3;
    search = start;
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts);
}
