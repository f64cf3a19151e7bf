import { describe, expect, it } from 'vitest';
import {
  answerSignatureMatches,
  createNonceCache,
  signAnswer,
  signRequest,
  verifyRequest,
  verifyRequestHead,
  type VerifyInput,
} from './signing.ts';

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
    // The same answer for both: a caller learns nothing about which peer names exist.
    const unknown = verify(signed(), { secretOf: () => undefined });
    expect(unknown).toEqual(verify(signed({ secret: 'guess' })));
    expect(unknown).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
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
    expect(verify(headers)).toMatchObject({
      ok: false,
      code: 'BAD_SIGNATURE',
      message: expect.stringContaining('x-herald-nonce'),
    });
  });
});

describe('head signature (checked before the body is read)', () => {
  const headOf = (overrides: Partial<{ peer: string; secret: string; body: string; at: number }> = {}) =>
    signRequest({
      peer: overrides.peer ?? 'marketing-1',
      secret: overrides.secret ?? secret,
      method: 'POST',
      path: '/mid/v1/deliveries/7/parts/1',
      body: overrides.body ?? '{"a":1}',
      now: overrides.at ?? now,
      nonce,
    }) as unknown as Record<string, string>;
  const check = (headers: Record<string, string>, contentLength: string | null = '7') =>
    verifyRequestHead({
      method: 'POST',
      path: '/mid/v1/deliveries/7/parts/1',
      headers: contentLength === null ? headers : { ...headers, 'content-length': contentLength },
      now,
      windowMs: 300_000,
      maxBodyBytes: 1_000,
      secretOf: (peer) => (peer === 'marketing-1' ? secret : undefined),
    });

  it('accepts the declared length it was made for, and nothing else', () => {
    expect(check(headOf())).toEqual({ ok: true, peer: 'marketing-1', nonce, contentLength: 7 });
    expect(check(headOf(), '8')).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
    expect(check(headOf({ body: 'x'.repeat(2_000) }), '2000')).toMatchObject({ ok: false, code: 'BODY_TOO_LARGE' });
    expect(check({ ...headOf(), 'transfer-encoding': 'chunked' }, null)).toMatchObject({ code: 'INVALID_BODY' });
  });

  it('answers an unknown peer exactly as a bad signature; a stale timestamp only once authenticated', () => {
    const unknown = check(headOf({ peer: 'stranger' }));
    expect(unknown).toEqual(check(headOf({ secret: 'wrong-secret-0123456789' })));
    expect(unknown).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
    expect(check(headOf({ at: now - 400_000 }))).toMatchObject({ ok: false, code: 'STALE_TIMESTAMP' });
    expect(check(headOf({ at: now - 400_000, secret: 'wrong-secret-0123456789' }))).toMatchObject({
      code: 'BAD_SIGNATURE',
    });
  });
});

describe('answer signing', () => {
  const answer = {
    secret,
    peer: 'marketing-1',
    method: 'POST',
    path: '/mid/v1/deliveries/7/parts/1',
    nonce,
    status: 200,
    body: '{"part":1,"recipients":2,"duplicate":false}',
  };

  it('accepts an answer signed with the shared secret over the request it answers', () => {
    expect(answerSignatureMatches(answer, signAnswer(answer))).toBe(true);
  });

  it.each([
    ['another request (nonce)', { nonce: 'BBBBBBBBBBBBBBBBBBBBBB' }],
    ['another path', { path: '/mid/v1/deliveries/7/parts/2' }],
    ['another method', { method: 'GET' }],
    ['another peer', { peer: 'marketing-2' }],
    ['another status', { status: 409 }],
    ['another body', { body: '{"part":1,"recipients":3,"duplicate":false}' }],
    ['another secret', { secret: 'some-other-secret-0123456789' }],
  ])('refuses an answer signed for %s', (_what, change) => {
    expect(answerSignatureMatches(answer, signAnswer({ ...answer, ...change }))).toBe(false);
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['not hex', 'z'.repeat(64)],
    ['upper-case hex', signAnswer(answer).toUpperCase()],
    ['truncated', signAnswer(answer).slice(0, 63)],
  ])('refuses a %s signature', (_what, signature) => {
    expect(answerSignatureMatches(answer, signature)).toBe(false);
  });

  it('never takes a request MAC for an answer MAC, nor the other way round', () => {
    const request = signed({ body: answer.body });
    expect(answerSignatureMatches(answer, request['x-herald-signature'])).toBe(false);
    expect(answerSignatureMatches(answer, request['x-herald-head-signature'])).toBe(false);
    const asRequest = { ...request, 'x-herald-signature': signAnswer(answer) };
    expect(verify(asRequest, { body: answer.body })).toMatchObject({ ok: false, code: 'BAD_SIGNATURE' });
  });
});
