// @ts-check
// MIME encoders for the message builder, written for speed on the hot path (plain loops over
// bytes, no streams). RFC 2045 (quoted-printable, base64), RFC 2047 (encoded words). Plain JavaScript
// (checked by tsc through its JSDoc), as dkim-core.mjs: the signing workers build messages with it.

const nonAsciiOrNul = /[^\x01-\x7f]/;

/**
 * True when every character is 7-bit ASCII and no line is longer than 998 characters (RFC 5322 §2.1.1).
 * @param {string} text
 */
export function isSevenBitSafe(text) {
  // A regular expression runs as native code: much faster than a JS loop over a 2 KB body.
  return !nonAsciiOrNul.test(text) && !hasLongLine(text, 998);
}

/**
 * Line lengths by indexOf jumps (a regex like /[^\n]{999}/ backtracks at every position).
 * @param {string} text
 * @param {number} max
 */
function hasLongLine(text, max) {
  let start = 0;
  for (;;) {
    const newline = text.indexOf('\n', start);
    const end = newline < 0 ? text.length : newline;
    const length = end - start - (end > start && text.charCodeAt(end - 1) === 13 ? 1 : 0);
    if (length > max) return true;
    if (newline < 0) return false;
    start = newline + 1;
  }
}

/** @param {string} text */
export function toCrlf(text) {
  return text.replace(/\r\n|\r|\n/g, '\r\n');
}

const hex = '0123456789ABCDEF';

// A line of printable ASCII without '=' that does not end in white space needs only soft breaks.
const plainLine = /^[\x20-\x3c\x3e-\x7e\t]*[\x21-\x3c\x3e-\x7e]$/;

/**
 * RFC 2045 §6.7 quoted-printable of UTF-8 text with CRLF line breaks kept as hard breaks.
 * @param {string} text
 */
export function encodeQuotedPrintable(text) {
  const lines = toCrlf(text).split('\r\n');
  for (let i = 0; i < lines.length; i++) {
    const line = /** @type {string} */ (lines[i]);
    if (line.length === 0) continue;
    if (plainLine.test(line)) lines[i] = softWrap(line);
    else if (asciiLine.test(line)) lines[i] = softWrapEscaped(line.replaceAll('=', '=3D'));
    else lines[i] = encodeQuotedPrintableBytes(line);
  }
  return lines.join('\r\n');
}

// Printable ASCII (with '=') not ending in white space: HTML with attributes, the common case.
const asciiLine = /^[\x20-\x7e\t]*[\x21-\x7e]$/;

/**
 * Soft breaks every 75 characters, never inside an =XX escape.
 * @param {string} line
 */
function softWrapEscaped(line) {
  if (line.length <= 76) return line;
  let out = '';
  let start = 0;
  while (line.length - start > 76) {
    let end = start + 75;
    if (line.charCodeAt(end - 1) === 0x3d) end -= 1;
    else if (line.charCodeAt(end - 2) === 0x3d) end -= 2;
    out += `${line.slice(start, end)}=\r\n`;
    start = end;
  }
  return out + line.slice(start);
}

/** @param {string} line */
function softWrap(line) {
  if (line.length <= 76) return line;
  let out = '';
  let start = 0;
  while (line.length - start > 76) {
    out += `${line.slice(start, start + 75)}=\r\n`;
    start += 75;
  }
  return out + line.slice(start);
}

/** @param {string} text */
function encodeQuotedPrintableBytes(text) {
  const bytes = Buffer.from(text, 'utf8');
  // Worst case: every byte becomes =XX plus a soft break every 73 characters.
  const out = Buffer.allocUnsafe(bytes.length * 3 + Math.ceil((bytes.length * 3) / 73) * 3 + 3);
  let o = 0;
  let line = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = /** @type {number} */ (bytes[i]);
    if (byte === 0x0d && bytes[i + 1] === 0x0a) {
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      i++;
      line = 0;
      continue;
    }
    const next = bytes[i + 1];
    const endOfLine = next === undefined || (next === 0x0d && bytes[i + 2] === 0x0a);
    // Trailing white space would be stripped in transit (§6.7 rule 3), so it is encoded.
    const literal = (byte >= 0x21 && byte <= 0x7e && byte !== 0x3d) || ((byte === 0x20 || byte === 0x09) && !endOfLine);
    const width = literal ? 1 : 3;
    // Lines stay within 76 characters including the '=' of a soft break (§6.7 rule 5).
    if (line + width > (endOfLine ? 76 : 75)) {
      out[o++] = 0x3d;
      out[o++] = 0x0d;
      out[o++] = 0x0a;
      line = 0;
    }
    if (literal) {
      out[o++] = byte;
    } else {
      out[o++] = 0x3d;
      out[o++] = hex.charCodeAt(byte >> 4);
      out[o++] = hex.charCodeAt(byte & 15);
    }
    line += width;
  }
  return out.toString('latin1', 0, o);
}

/**
 * Base64 in lines of 76 characters (RFC 2045 §6.8).
 * @param {string} text
 */
export function encodeBase64Lines(text) {
  const encoded = Buffer.from(text, 'utf8').toString('base64');
  if (encoded.length <= 76) return encoded;
  /** @type {string[]} */
  const lines = [];
  for (let i = 0; i < encoded.length; i += 76) lines.push(encoded.slice(i, i + 76));
  return lines.join('\r\n');
}

const nonAsciiRun = /[^\x00-\x7f]+/g;

/**
 * Share of non-ASCII characters above which base64 is shorter than quoted-printable.
 * @param {string} text
 */
export function mostlyNonAscii(text) {
  let high = 0;
  for (const match of text.matchAll(nonAsciiRun)) high += match[0].length;
  return high > text.length / 3;
}

/** @param {string} text */
function isAsciiPrintable(text) {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code >= 0x7f) return false;
  }
  return true;
}

/**
 * A header value as RFC 2047 "B" encoded words when it is not printable ASCII, folded so that no
 * line passes 78 characters. Each word holds whole characters (a split UTF-8 sequence is invalid).
 * @param {string} value
 */
export function encodeHeaderWords(value) {
  if (isAsciiPrintable(value)) return foldAscii(value) ?? encodedWords(value);
  return encodedWords(value);
}

/**
 * RFC 2047 "B" encoded words, one per line: the space between adjacent encoded words is not part
 * of the text (§6.2), so a value of any length folds without being changed.
 * @param {string} value
 */
function encodedWords(value) {
  /** @type {string[]} */
  const words = [];
  let chunk = '';
  let chunkBytes = 0;
  for (const char of value) {
    const size = Buffer.byteLength(char, 'utf8');
    // RFC 2047 §2: a line holding encoded words is at most 76 characters. 39 bytes -> 52 base64
    // characters, + 12 for =?UTF-8?B? ?= = 64, after "Subject: " 73 (45 bytes made it 81).
    if (chunkBytes + size > 39) {
      words.push(chunk);
      chunk = '';
      chunkBytes = 0;
    }
    chunk += char;
    chunkBytes += size;
  }
  if (chunk) words.push(chunk);
  return words.map((word) => `=?UTF-8?B?${Buffer.from(word, 'utf8').toString('base64')}?=`).join('\r\n ');
}

/**
 * Folds a long ASCII header value at spaces so no line passes ~900 characters (RFC 5322 §2.2.3),
 * or null when a run of 900 characters has no space: folding it would add a space to the text
 * (unfolding removes only the CRLF), so it is encoded instead.
 * @param {string} value
 * @returns {string | null}
 */
function foldAscii(value) {
  if (value.length <= 900) return value;
  /** @type {string[]} */
  const parts = [];
  let rest = value;
  while (rest.length > 900) {
    const cut = rest.lastIndexOf(' ', 900);
    if (cut <= 0) return null;
    parts.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  parts.push(rest);
  return parts.join('\r\n');
}

/**
 * A display name as an RFC 5322 quoted string, or encoded words when not ASCII.
 * @param {string} name
 */
export function encodeDisplayName(name) {
  if (!isAsciiPrintable(name)) return encodeHeaderWords(name);
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(name)) return name;
  return `"${name.replace(/[\\"]/g, '\\$&')}"`;
}
