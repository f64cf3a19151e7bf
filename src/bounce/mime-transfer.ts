// Content-Transfer-Encoding (RFC 2045 §6) over byte strings: one char per byte (latin1), so
// bodies are sliced out of the raw message without copying and decoded only when read.
// Line breaks come out as LF whatever the message used.

/** The body bytes of a part, decoded from its transfer encoding. */
export function decodeTransfer(body: string, encoding: string): string {
  if (encoding.includes('base64')) return decodeBase64(body);
  const text = normalizeLines(body);
  return encoding.includes('quoted-printable') ? decodeQuotedPrintable(text) : text;
}

/** CRLF (and stray CRs before LF) to LF; the last line gets its line break too. */
function normalizeLines(body: string): string {
  if (body === '') return body;
  const text = body.endsWith('\n') ? body : `${body}\n`;
  return text.includes('\r') ? text.replace(/\r+\n/g, '\n') : text;
}

function decodeBase64(body: string): string {
  const clean = body.replace(/[^A-Za-z0-9+/=]+/g, '');
  // '=' ends a unit: some mailers pad every line, so each padded unit is decoded on its own, into
  // one buffer (a buffer and an array entry per unit cost 4 µs per "QQ=" unit of a sender's part).
  if (!clean.includes('=')) return Buffer.from(clean, 'base64').toString('latin1');
  const out = Buffer.allocUnsafe(Math.ceil((clean.length * 3) / 4));
  let length = 0;
  for (let from = 0; from < clean.length; ) {
    const pad = clean.indexOf('=', from);
    const end = pad < 0 ? clean.length : pad;
    if (end > from) length += out.write(clean.slice(from, end), length, 'base64');
    from = end + 1;
  }
  return out.toString('latin1', 0, length);
}

// One pass, left to right as a line-by-line decoder would: '=' before a line break is a soft
// break (the break is not content), '=' before two hex digits is a byte, any other '=' is kept.
const QP_SEQUENCE = /=(?:\n|([0-9A-Fa-f]{2}))/g;

function decodeQuotedPrintable(text: string): string {
  return text.includes('=')
    ? text.replace(QP_SEQUENCE, (_, hex: string | undefined) => (hex ? String.fromCharCode(parseInt(hex, 16)) : ''))
    : text;
}

/** RFC 3676 format=flowed: soft-broken lines (ending in a space) are joined again. */
export function decodeFlowed(text: string, delSp: boolean): string {
  const out: string[] = [];
  let current = '';
  let open = false;
  for (const raw of text.split(/\r?\n/)) {
    // Space-stuffing (RFC 3676 §4.4) is removed first.
    const line = raw.startsWith(' ') ? raw.slice(1) : raw;
    if (open) current += line;
    else current = line;
    open = current.endsWith(' ') && current !== '-- ';
    if (open && delSp) current = current.slice(0, -1);
    if (!open) out.push(current);
  }
  if (open) out.push(current);
  return out.join('\n');
}
