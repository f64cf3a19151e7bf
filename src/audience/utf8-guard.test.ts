import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import type { AppError } from '../common/errors.ts';
import { createUtf8Guard, findInvalidUtf8 } from './utf8-guard.ts';

async function run(chunks: Buffer[]): Promise<{ output: Buffer; error?: AppError }> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, callback) {
      parts.push(chunk);
      callback();
    },
  });
  try {
    await pipeline(Readable.from(chunks), createUtf8Guard('list.csv'), sink);
    return { output: Buffer.concat(parts) };
  } catch (error) {
    return { output: Buffer.concat(parts), error: error as AppError };
  }
}

describe('findInvalidUtf8', () => {
  it.each([
    ['ascii', [0x61, 0x62], -1],
    ['é in UTF-8', [0x61, 0xc3, 0xa9], -1],
    ['emoji', [0xf0, 0x9f, 0x93, 0xa7], -1],
    ['Latin-1 é', [0x61, 0xe9, 0x62], 1],
    ['overlong slash', [0xc0, 0xaf], 0],
    ['overlong 3-byte', [0xe0, 0x80, 0xaf], 0],
    ['surrogate', [0xed, 0xa0, 0x80], 0],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
    ['stray continuation', [0x61, 0x80], 1],
    ['truncated at end', [0x61, 0xe2, 0x82], 1],
  ])('%s', (_name, bytes, expected) => {
    expect(findInvalidUtf8(Uint8Array.from(bytes))).toBe(expected);
  });
});

describe('createUtf8Guard', () => {
  const text = Buffer.from('email,name\nana@example.com,Zoë 📧\nbob@example.com,Łukasz\n', 'utf8');

  it('passes UTF-8 through unchanged however the chunks split multi-byte sequences', async () => {
    for (let cut = 1; cut < text.length; cut++) {
      const { output, error } = await run([text.subarray(0, cut), text.subarray(cut)]);
      expect(error).toBeUndefined();
      expect(output.equals(text)).toBe(true);
    }
  });

  it('names the line of a Latin-1 byte, even when it follows a chunk boundary', async () => {
    const latin1 = Buffer.concat([
      Buffer.from('email,name\nana@example.com,ok\nbob@example.com,Zo'),
      Buffer.from([0xeb]),
      Buffer.from('\n'),
    ]);
    for (const cut of [5, 40, latin1.length - 2, latin1.length - 1]) {
      const { error } = await run([latin1.subarray(0, cut), latin1.subarray(cut)]);
      expect(error?.code).toBe('CSV_ENCODING');
      expect(error?.message).toContain('0xEB at line 3');
    }
  });

  it('counts CR, LF and CRLF each as one line break, as the CSV parser does, wherever the chunks split', async () => {
    // Lines: 1 header (CRLF), 2 ana (CR), 3 bob (LF), 4-5 a quoted field broken by a CRLF, 6 the bad byte.
    const mixed = Buffer.concat([
      Buffer.from('email,name\r\nana@example.com,A\rbob@example.com,B\ncat@example.com,"C\r\nc"\r\ndan@example.com,D'),
      Buffer.from([0xff]),
      Buffer.from('\r'),
    ]);
    for (let cut = 1; cut < mixed.length; cut++) {
      const { error } = await run([mixed.subarray(0, cut), mixed.subarray(cut)]);
      expect(error?.message).toContain('0xFF at line 6');
    }
  });

  it('fails on a sequence cut off by the end of the file', async () => {
    const { error } = await run([Buffer.from('email\n'), Buffer.from([0x61, 0xe2, 0x82])]);
    expect(error?.code).toBe('CSV_ENCODING');
  });

  it('recognises UTF-16', async () => {
    const { error } = await run([Buffer.from('\ufeffemail\n', 'utf16le')]);
    expect(error?.message).toContain('UTF-16');
  });

  it('recognises UTF-16 without a byte order mark, little- or big-endian', async () => {
    const text = 'email,name\nana@example.com,Zoë\n';
    const bigEndian = Buffer.from(text, 'utf16le').swap16();
    for (const bytes of [Buffer.from(text, 'utf16le'), bigEndian]) {
      const { error } = await run([bytes]);
      expect(error?.code).toBe('CSV_ENCODING');
      expect(error?.message).toContain('the file is UTF-16, not UTF-8');
    }
  });
});
