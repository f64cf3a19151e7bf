import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createHmacSha256 } from './hmac-sha256.ts';

// The token MAC must be HMAC-SHA256 bit for bit whatever the lengths: every
// key length (shorter, equal to and longer than a block), every message length around the padding
// boundaries (55/56/64 bytes), and a prefix of a longer buffer.

const reference = (key: Buffer, message: Buffer) => createHmac('sha256', key).update(message).digest('hex');

describe('HMAC-SHA256 of tracking tokens', () => {
  it('matches node:crypto for keys of 0-130 bytes and messages of 0-200 bytes', () => {
    const out = new Uint8Array(32);
    for (let keyLength = 0; keyLength <= 130; keyLength += 13) {
      const key = randomBytes(keyLength);
      const hmac = createHmacSha256(key);
      for (let length = 0; length <= 200; length++) {
        const message = randomBytes(length);
        hmac.mac(message, length, out);
        expect(Buffer.from(out).toString('hex'), `key ${keyLength} B, message ${length} B`).toBe(
          reference(key, message),
        );
      }
    }
  });

  it('MACs only the first `length` bytes of the buffer it is given', () => {
    const key = randomBytes(43);
    const buffer = randomBytes(80);
    const out = new Uint8Array(32);
    createHmacSha256(key).mac(buffer, 57, out);
    expect(Buffer.from(out).toString('hex')).toBe(reference(key, buffer.subarray(0, 57)));
  });

  it('gives the RFC 4231 test case 2 value', () => {
    const out = new Uint8Array(32);
    const message = Buffer.from('what do ya want for nothing?');
    createHmacSha256(Buffer.from('Jefe')).mac(message, message.length, out);
    expect(Buffer.from(out).toString('hex')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});
