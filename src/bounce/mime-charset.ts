// Text decoding by MIME charset label (RFC 2046 §4.1.2). TextDecoder knows the WHATWG labels;
// mailers also write vendor spellings (x-sjis, cp932, iso-2022-jp-2, ks_c_5601-1987), which are
// mapped onto those. Anything still unknown decodes as windows-1252, which never fails and keeps
// the ASCII diagnostics readable.

const ALIASES = new Map<string, string>([
  ['shiftjis', 'shift_jis'],
  ['sjis', 'shift_jis'],
  ['windows31j', 'shift_jis'],
  ['mskanji', 'shift_jis'],
  ['eucjp', 'euc-jp'],
  ['iso2022jp', 'iso-2022-jp'],
  ['iso2022jp1', 'iso-2022-jp'],
  ['iso2022jp2', 'iso-2022-jp'],
  ['junet', 'iso-2022-jp'],
  ['euckr', 'euc-kr'],
  ['uhc', 'euc-kr'],
  ['ksc56011987', 'euc-kr'],
  ['tis620', 'windows-874'],
  ['iso88598i', 'iso-8859-8'],
  ['iso88598e', 'iso-8859-8'],
  ['utf8', 'utf-8'],
  ['usascii', 'us-ascii'],
]);
const CODE_PAGES = new Map<string, string>([
  ['932', 'shift_jis'],
  ['936', 'gbk'],
  ['949', 'euc-kr'],
  ['950', 'big5'],
  ['874', 'windows-874'],
  ['51932', 'euc-jp'],
  ['50220', 'iso-2022-jp'],
  ['50221', 'iso-2022-jp'],
  ['50222', 'iso-2022-jp'],
]);
// Labels come from the message: the cache is bounded so a message cannot grow it without end.
const MAX_CACHED = 128;
const cache = new Map<string, TextDecoder>();
const fallback = new TextDecoder('windows-1252');

function tryDecoder(label: string): TextDecoder | undefined {
  try {
    return new TextDecoder(label);
  } catch {
    return undefined;
  }
}

/** A decoder for a charset label; never throws (unknown labels decode as windows-1252). */
export function decoderFor(charset: string | undefined): TextDecoder {
  const label = (charset || 'utf-8').trim().toLowerCase();
  const cached = cache.get(label);
  if (cached) return cached;
  const normalized = label.replace(/^(?:x-ms-|x-|cs)/, '').replace(/[\s._-]+/g, '');
  const codePage = /^(?:cp|windows|ms|ibm)(\d+)$/.exec(normalized)?.[1];
  const decoder =
    tryDecoder(label) ??
    tryDecoder((codePage && CODE_PAGES.get(codePage)) || ALIASES.get(normalized) || normalized) ??
    fallback;
  if (cache.size < MAX_CACHED) cache.set(label, decoder);
  return decoder;
}

// Encodings in which a pure-ASCII byte string decodes to itself (not UTF-16, not ISO-2022-*,
// whose escape sequences are ASCII bytes).
const ASCII_SAFE = /^(?:utf-8|windows-\d+|iso-8859-\d+|koi8-[ru]|macintosh|gbk|gb18030|big5|euc-jp|euc-kr|shift_jis)$/;

// RFC 1468: ISO-2022-JP text announces itself by escape sequences (ESC $ B, ESC $ @ for JIS X 0208,
// ESC ( J for JIS X 0201). Mailers write it undeclared where RFC 3464 wants ASCII (Lotus Domino's
// Diagnostic-Code): left to UTF-8, the escapes would be dropped as control characters and the
// Japanese read as ASCII punctuation.
// eslint-disable-next-line no-control-regex
const iso2022JpEscape = /\x1b(?:\$[@B]|\(J)/;

/**
 * Decodes a byte string (one char per byte, as from latin1) with a charset label; without one,
 * UTF-8, or ISO-2022-JP where its escape sequences are.
 */
export function decodeBytes(bytes: string, charset: string | undefined): string {
  const decoder = decoderFor(charset ?? (iso2022JpEscape.test(bytes) ? 'iso-2022-jp' : undefined));
  // eslint-disable-next-line no-control-regex
  if (ASCII_SAFE.test(decoder.encoding) && !/[^\x00-\x7f]/.test(bytes)) return bytes;
  return decoder.decode(Buffer.from(bytes, 'latin1'));
}
