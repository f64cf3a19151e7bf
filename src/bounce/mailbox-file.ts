// A file of bounces may be a mailbox (RFC 4155, the "mbox" format MTAs and mail readers save):
// messages one after another, each opened by a `From <sender> <asctime date>` line. RFC 4155 puts
// an empty line before it, but saved bounces do not always have one (a MIME message's closing
// boundary, then the next From line): the line is recognised by its date instead, which body text
// starting with "From " does not have. Each message is a bounce of its own; read as one message, the
// reports after the first would be lost (the first message's MIME structure ends before them).

const SEPARATOR =
  /^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d\d:\d\d(?::\d\d)? (?:[A-Z]{3,4} )?\d{4}[^\r\n]*\r?\n/gm;

/** The messages of a mailbox file, without their `From ` lines; any other file is one message. */
export function splitMailbox(raw: Uint8Array): Uint8Array[] {
  // latin1 maps each byte to one character, so string offsets are byte offsets.
  const text = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
  if (!text.startsWith('From ')) return [raw];
  const messages: Uint8Array[] = [];
  let start = 0;
  for (const match of text.matchAll(SEPARATOR)) {
    if (match.index > 0) messages.push(raw.subarray(start, match.index));
    start = match.index + match[0].length;
  }
  messages.push(raw.subarray(start));
  return messages.filter((message) => message.byteLength > 0);
}
