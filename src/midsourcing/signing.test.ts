import { describe, expect, it } from 'vitest';
import { createNonceCache, signRequest, verifyRequest, type VerifyInput } from './signing.ts';

const secret = 'shared-secret-of-marketing-1';
const now = Date.UTC(2026, 10, 27, 10, 0, 0);
const nonce = 'AAAAAAAAAAAAAAAAAAAAAA';

function signed(overrides: Partial<{ body: string; path: string; at: number; nonce: string; secret: string }> = {}) {
  const headers = signRequest({
    peer: 'marketing-1',
    secret: overrides.secret ?? secret,
    method: 'POST',
    path: overrides.path ?? '/mid/v1/deliveries/7/parts/1',
    body: overrides.body ?? '{"a":1}',
    now: overrides.at ?? now,
    nonce: overrides.nonce ?? nonce,
  });
  return headers as unknown as Record<string, string>;
}

function verify(headers: Record<string, string>, overrides: Partial<VerifyInput> = {}) {
  return verifyRequest({
    method: 'POST',
    path: '/mid/v1/deliveries/7/parts/1',
    headers,
    body: '{"a":1}',
    now,
    windowMs: 300_000,
    secretOf: (peer) => (peer === 'marketing-1' ? secret : undefined),
    nonces: createNonceCache(),
    ...overrides,
  });
}

describe('request signing', () => {
  it('accepts a request signed with the shared secret', () => {
    expect(verify(signed())).toEqual({ ok: true, peer: 'marketing-1', nonce });
  });

  it.each([
    ['another body', { body: '{"a":2}' }],
    ['another path', { path: '/mid/v1/deliveries/8/parts/1' }],
    ['another method', { method: 'PUT' }],
  ])('rejects a signature made for %s', (_, change) => {
    const result = verify(signed(), change as Partial<VerifyInput>);
    expect(result).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
  });

  it('rejects a wrong secret and an unknown peer', () => {
    expect(verify(signed({ secret: 'guess' }))).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
    expect(verify(signed(), { secretOf: () => undefined })).toMatchObject({ ok: false, code: 'UNKNOWN_PEER' });
  });

  it('rejects timestamps outside the window, on both sides', () => {
    expect(verify(signed({ at: now - 301_000 }))).toMatchObject({ ok: false, code: 'STALE_TIMESTAMP' });
    expect(verify(signed({ at: now + 301_000 }))).toMatchObject({ ok: false, code: 'STALE_TIMESTAMP' });
    expect(verify(signed({ at: now - 299_000 }))).toMatchObject({ ok: true });
  });

  it('rejects a replayed nonce inside the window and accepts a fresh one', () => {
    const nonces = createNonceCache();
    expect(verify(signed(), { nonces })).toMatchObject({ ok: true });
    expect(verify(signed(), { nonces })).toMatchObject({ ok: false, code: 'REPLAYED' });
    expect(verify(signed({ nonce: 'BBBBBBBBBBBBBBBBBBBBBB' }), { nonces })).toMatchObject({ ok: true });
  });

  it('rejects missing headers by name', () => {
    const headers = signed();
    delete headers['x-herald-nonce'];
    expect(verify(headers)).toMatchObject({ ok: false, code: 'BAD_SIGNATURE', message: expect.stringContaining('x-herald-nonce') });
  });
});
