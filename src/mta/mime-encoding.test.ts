import { describe, expect, it } from 'vitest';
import { encodeQuotedPrintable } from './mime-encoding.mjs';

function decodeQuotedPrintable(encoded: string): string {
  const bytes: number[] = [];
  const unwrapped = encoded.replace(/=\r\n/g, '');
  for (let i = 0; i < unwrapped.length; i++) {
    if (unwrapped[i] === '=') {
      bytes.push(parseInt(unwrapped.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(unwrapped.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

describe('quoted-printable', () => {
  const samples = [
    '<table width="600" cellpadding="0"><tr><td style="font-family:Arial">'.repeat(20),
    `a=b ${'x='.repeat(200)}`,
    '==='.repeat(100),
    `line with trailing space \r\nnext\tline\t\r\nÉlodie déjà vu ${'é='.repeat(60)}`,
    'short=1',
  ];
  it.each(samples.map((s) => [s.slice(0, 30), s]))(
    'round-trips %s… with lines of at most 76 characters',
    (_label, text) => {
      const encoded = encodeQuotedPrintable(text);
      expect(decodeQuotedPrintable(encoded)).toBe(text.replace(/\r\n|\r|\n/g, '\r\n'));
      for (const line of encoded.split('\r\n')) expect(line.length).toBeLessThanOrEqual(76);
      expect(encoded).not.toMatch(/=(?![0-9A-F]{2}|\r\n|$)/m);
    },
  );
});
