import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../common/errors.ts';

// Passes bytes through unchanged and fails with CSV_ENCODING, naming the line, at the first byte that
// is not well-formed UTF-8. The native decoder checks each chunk (it keeps a sequence split across two
// chunks pending); only on failure do we scan by hand to find where the bad byte is.

/** Offset of the first byte that starts an ill-formed sequence (Unicode Table 3-7), or -1. */
export function findInvalidUtf8(bytes: Uint8Array, allowTruncatedEnd = false): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let length: number;
    let low = 0x80;
    let high = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) low = 0xa0; // overlong
      if (b === 0xed) high = 0x9f; // UTF-16 surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) low = 0x90; // overlong
      if (b === 0xf4) high = 0x8f; // above U+10FFFF
    } else return i;
    for (let k = 1; k < length; k++) {
      if (i + k >= bytes.length) return allowTruncatedEnd ? -1 : i;
      const next = bytes[i + k] as number;
      const min = k === 1 ? low : 0x80;
      const max = k === 1 ? high : 0xbf;
      if (next < min || next > max) return i;
    }
    i += length;
  }
  return -1;
}

/**
 * Line breaks in bytes[0, end): LF, CR and CRLF each end a line, as the CSV parser reads them (a file
 * from a classic Mac or a mixed export ends rows with CR alone). `afterCr`: the byte before `bytes` was
 * a CR, so an LF first is the second half of that CRLF.
 */
function countLineBreaks(bytes: Uint8Array, end: number, afterCr: boolean): number {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, end);
  let count = 0;
  let at = -1;
  while ((at = buffer.indexOf(0x0a, at + 1)) !== -1) if (at > 0 ? buffer[at - 1] !== 0x0d : !afterCr) count++;
  at = -1;
  while ((at = buffer.indexOf(0x0d, at + 1)) !== -1) count++;
  return count;
}

/** Bytes at the end of `chunk` that start a sequence the chunk does not finish (0 to 3). */
function pendingTail(chunk: Uint8Array): Uint8Array {
  for (let back = 1; back <= Math.min(3, chunk.length); back++) {
    const b = chunk[chunk.length - back] as number;
    if (b >= 0xc0) {
      const length = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return length > back ? chunk.subarray(chunk.length - back) : new Uint8Array(0);
    }
    if (b < 0x80) break;
  }
  return new Uint8Array(0);
}

/**
 * UTF-16 without a byte order mark: every ASCII character of the header has a NUL beside it. Passed on
 * as UTF-8 (NUL is valid UTF-8), it failed as "no email column" listing columns such as
 * "e\u0000m\u0000a\u0000i\u0000l\u0000", or with the Latin-1 hint at its first non-ASCII letter.
 */
function isUtf16(chunk: Buffer): boolean {
  const lineEnd = chunk.indexOf(0x0a);
  return chunk.subarray(0, lineEnd === -1 ? chunk.length : lineEnd).includes(0);
}

function encodingError(file: string, line: number, byte: number | undefined, utf16: boolean): AppError {
  const what = utf16
    ? 'the file is UTF-16, not UTF-8'
    : `invalid UTF-8 byte 0x${(byte ?? 0).toString(16).toUpperCase().padStart(2, '0')} at line ${line}`;
  const hint = utf16 ? 'iconv -f utf-16 -t utf-8' : 'iconv -f latin1 -t utf-8 (or -f windows-1252)';
  return new AppError('CSV_ENCODING', `${file}: ${what}; the file must be UTF-8: convert it, e.g. ${hint}`, {
    details: { file, line },
  });
}

export function createUtf8Guard(file: string): Transform {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let linesBefore = 1;
  let previous: Uint8Array = new Uint8Array(0);
  const endsInCr = (chunk: Uint8Array): boolean => chunk[chunk.length - 1] === 0x0d;
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (first && chunk.length >= 2) {
        first = false;
        if ((chunk[0] === 0xff && chunk[1] === 0xfe) || (chunk[0] === 0xfe && chunk[1] === 0xff) || isUtf16(chunk)) {
          callback(encodingError(file, 1, chunk[0], true));
          return;
        }
      }
      try {
        decoder.decode(chunk, { stream: true });
      } catch {
        const tail = pendingTail(previous);
        const joined = Buffer.concat([tail, chunk]);
        // The bad sequence may start in the pending tail of the previous chunk (which holds no newline).
        const at = Math.max(0, findInvalidUtf8(joined, true));
        const line = linesBefore + countLineBreaks(chunk, Math.max(0, at - tail.length), endsInCr(previous));
        callback(encodingError(file, line, joined[at], false));
        return;
      }
      linesBefore += countLineBreaks(chunk, chunk.length, endsInCr(previous));
      previous = chunk;
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      try {
        decoder.decode();
        callback();
      } catch {
        const tail = pendingTail(previous);
        callback(encodingError(file, linesBefore, tail[0], false));
      }
    },
  });
}
