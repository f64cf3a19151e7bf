import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeyRing } from './token.ts';

const day = 86_400_000;
const t0 = Date.UTC(2026, 0, 10);
const oldKey = { id: 'k1', secret: 'old-secret-0123456789abcdef', createdAt: t0 - 100 * day };
const newKey = { id: 'k2', secret: 'new-secret-0123456789abcdef', createdAt: t0 };
const claims = {
  kind: 'click' as const,
  deliveryId: 12,
  logId: 345_678,
  linkIndex: 3,
  occurrence: 1,
  issuedAt: Math.floor(t0 / 1000),
};

describe('tracking tokens', () => {
  const ring = createKeyRing({ keys: [oldKey, newKey], graceMs: 30 * day, ttlMs: 365 * day });

  it('round-trips claims with the newest key, in a short URL-safe token', () => {
    const token = ring.sign(claims);
    expect(token).toMatch(/^[A-Za-z0-9_-]{20,60}$/);
    expect(ring.verify(token, t0 + 1000)).toEqual({ ok: true, claims, keyId: 'k2' });
  });

  it('carries the first 16 bytes of HMAC-SHA256(key, body) as node:crypto computes it', () => {
    const bytes = Buffer.from(ring.sign(claims), 'base64url');
    const body = bytes.subarray(0, bytes.length - 16);
    expect(bytes.subarray(bytes.length - 16)).toEqual(
      createHmac('sha256', newKey.secret).update(body).digest().subarray(0, 16),
    );
  });

  it('refuses any modified byte, malformed and oversized tokens', () => {
    const token = ring.sign(claims);
    const bytes = Buffer.from(token, 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i] = copy[i]! ^ 1;
      expect(ring.verify(copy.toString('base64url'), t0).ok).toBe(false);
    }
    for (const bad of [
      '',
      'abc',
      `${token}=`,
      `${token}%0d%0a`,
      token.slice(0, -1),
      'A'.repeat(161),
      '../../etc/passwd',
      `${token}\r\nLocation: https://evil.test`,
    ]) {
      expect(ring.verify(bad, t0).ok).toBe(false);
    }
  });

  it('accepts a token only in its canonical spelling (unused trailing bits zero, no 4n+1 length)', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const tokens = Array.from({ length: 8 }, (_, i) =>
      ring.sign({ ...claims, logId: claims.logId + i * 997, deliveryId: 12 + i * 131 }),
    );
    const partial = tokens.filter((t) => t.length % 4 !== 0);
    expect(partial.length).toBeGreaterThan(0);
    for (const token of partial) {
      const last = alphabet.indexOf(token.at(-1)!);
      // Same decoded bytes, other spelling: flips an unused low bit of the last character.
      const twin = token.slice(0, -1) + alphabet[last ^ 1];
      expect(Buffer.from(twin, 'base64url').equals(Buffer.from(token, 'base64url'))).toBe(true);
      expect(ring.verify(token, t0).ok).toBe(true);
      expect(ring.verify(twin, t0)).toEqual({ ok: false, reason: 'malformed' });
    }
  });

  it('does not accept a token of one kind for another', () => {
    const open = ring.sign({ kind: 'open', deliveryId: 1, logId: 2, issuedAt: claims.issuedAt });
    const result = ring.verify(open, t0);
    expect(result.ok && result.claims.kind).toBe('open');
  });

  it('keeps old keys verifying for the grace period after rotation, then refuses them', () => {
    const before = createKeyRing({ keys: [oldKey], graceMs: 30 * day, ttlMs: 365 * day });
    const token = before.sign({ ...claims, issuedAt: Math.floor((t0 - day) / 1000) });
    expect(ring.verify(token, t0 + 29 * day)).toMatchObject({ ok: true, keyId: 'k1' });
    expect(ring.verify(token, t0 + 31 * day)).toEqual({ ok: false, reason: 'retired_key' });
    const unknown = createKeyRing({ keys: [{ ...newKey, id: 'k9' }], graceMs: 0, ttlMs: day });
    expect(unknown.verify(token, t0)).toEqual({ ok: false, reason: 'unknown_key' });
  });

  it('expires tokens after the TTL', () => {
    const token = ring.sign(claims);
    expect(ring.verify(token, t0 + 364 * day).ok).toBe(true);
    expect(ring.verify(token, t0 + 366 * day)).toEqual({ ok: false, reason: 'expired' });
  });

  it('a key with the same id but another secret does not verify', () => {
    const forged = createKeyRing({
      keys: [{ ...newKey, secret: 'attacker-guess-0123456789' }],
      graceMs: 0,
      ttlMs: day,
    });
    expect(ring.verify(forged.sign(claims), t0)).toEqual({ ok: false, reason: 'bad_signature' });
  });
});
