import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { midHeaders, type MidErrorCode } from './wire.ts';

// Request signing between peers: HMAC-SHA256 with the peer's shared secret over the method, the
// path (with its query), the timestamp, a nonce and the SHA-256 of the body bytes as sent (the
// gzip bytes of a part). A request outside ±window of the server's clock, or whose nonce was
// already seen inside the window, is rejected, so a captured request cannot be replayed. The nonces
// seen are kept in the database (src/midsourcing/seen-request-store.ts, checked by the execution
// server after verifyRequest), so this holds across restarts and execution processes; the cache
// below is only a first filter in front of it.
//
// A second MAC, the head signature, covers the same fields with the declared Content-Length
// instead of the body hash: the execution server checks it before it reads a byte of the body, so
// only a peer holding the secret can make it buffer anything. An unknown peer and a bad signature
// get the same answer, so a caller cannot learn which peer names exist.
//
// The answers are signed too: whatever answers on the peer's url (a man in the middle on plain
// HTTP, a proxy or load balancer answering for a dead backend, another service behind a wrong url)
// must not be believed, or parts would be taken as received and outcomes recorded on its word. The
// execution server signs each answer to an authenticated request with the same secret, over the
// request it answers (peer, method, path, nonce: the nonce is fresh per request, so an answer
// cannot be replayed for another one), the status and the SHA-256 of the answer's body bytes. The
// canonical text starts with `answer:v1`, which is no peer name (peer names have no colon) nor
// `head`, so an answer MAC can never pass for a request MAC or the other way round.

export interface SignedHeaders {
  [midHeaders.peer]: string;
  [midHeaders.timestamp]: string;
  [midHeaders.nonce]: string;
  [midHeaders.signature]: string;
  [midHeaders.headSignature]: string;
}

/** The one answer to an unknown peer, a missing or a bad signature. */
export const unauthenticatedMessage = 'request not authenticated (unknown peer, or missing or bad signature)';

function headCanonical(
  peer: string,
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  contentLength: number,
): string {
  return `head\n${peer}\n${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${contentLength}`;
}

export function sha256Hex(body: Uint8Array | string): string {
  return createHash('sha256').update(body).digest('hex');
}

function canonical(
  peer: string,
  method: string,
  path: string,
  timestamp: string,
  nonce: string,
  bodyHash: string,
): string {
  return `${peer}\n${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`;
}

function hmac(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}

/** Whether a hex MAC received equals the one computed, in constant time; anything not 64 hex digits is not. */
function macMatches(expectedHex: string, given: string | undefined): boolean {
  const expected = Buffer.from(expectedHex, 'hex');
  const received = Buffer.from(given !== undefined && /^[0-9a-f]{64}$/.test(given) ? given : '', 'hex');
  return received.length === expected.length && timingSafeEqual(received, expected);
}

export interface AnswerToSign {
  secret: string;
  /** The peer that signed the request (its x-herald-peer): the marketing instance's name. */
  peer: string;
  method: string;
  /** The request's path with its query, as signed in the request. */
  path: string;
  /** The request's nonce. */
  nonce: string;
  status: number;
  body: Uint8Array | string;
}

function answerCanonical(answer: AnswerToSign): string {
  return `answer:v1\n${answer.peer}\n${answer.method.toUpperCase()}\n${answer.path}\n${answer.nonce}\n${answer.status}\n${sha256Hex(answer.body)}`;
}

/** The value of the answer-signature header the execution server sends with an answer. */
export function signAnswer(answer: AnswerToSign): string {
  return hmac(answer.secret, answerCanonical(answer));
}

/** Whether an answer carries the signature of the peer's secret over this request, status and body. */
export function answerSignatureMatches(answer: AnswerToSign, signature: string | undefined): boolean {
  return macMatches(hmac(answer.secret, answerCanonical(answer)), signature);
}

export function signRequest(input: {
  peer: string;
  secret: string;
  method: string;
  path: string;
  body: Uint8Array | string;
  now: number;
  nonce: string;
}): SignedHeaders {
  const timestamp = String(input.now);
  const signature = hmac(
    input.secret,
    canonical(input.peer, input.method, input.path, timestamp, input.nonce, sha256Hex(input.body)),
  );
  const length = typeof input.body === 'string' ? Buffer.byteLength(input.body) : input.body.length;
  return {
    [midHeaders.peer]: input.peer,
    [midHeaders.timestamp]: timestamp,
    [midHeaders.nonce]: input.nonce,
    [midHeaders.signature]: signature,
    [midHeaders.headSignature]: hmac(
      input.secret,
      headCanonical(input.peer, input.method, input.path, timestamp, input.nonce, length),
    ),
  };
}

function missingHeaders(
  peer: string | undefined,
  timestamp: string | undefined,
  nonce: string | undefined,
  signature: string | undefined,
  signatureHeader: string,
): { ok: false; code: MidErrorCode; message: string } {
  const missing = [
    !peer && midHeaders.peer,
    !timestamp && midHeaders.timestamp,
    !nonce && midHeaders.nonce,
    !signature && signatureHeader,
  ].filter(Boolean);
  return { ok: false, code: 'BAD_SIGNATURE', message: `${unauthenticatedMessage}: missing ${missing.join(', ')}` };
}

export type HeadVerifyResult =
  | { ok: true; peer: string; nonce: string; contentLength: number }
  | { ok: false; code: MidErrorCode; message: string };

export interface HeadVerifyInput {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  now: number;
  windowMs: number;
  maxBodyBytes: number;
  secretOf(peer: string): string | undefined;
}

/**
 * Checks what is known before the body: peer, head signature (over the declared Content-Length),
 * timestamp, and that the declared length is within the limit. A body without a declared length
 * (chunked) is refused: its size could not be checked before reading.
 */
export function verifyRequestHead(input: HeadVerifyInput): HeadVerifyResult {
  const header = (name: string) => {
    const value = input.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const refused: HeadVerifyResult = { ok: false, code: 'BAD_SIGNATURE', message: unauthenticatedMessage };
  const peer = header(midHeaders.peer);
  const timestamp = header(midHeaders.timestamp);
  const nonce = header(midHeaders.nonce);
  const signature = header(midHeaders.headSignature);
  if (!peer || !timestamp || !nonce || !signature)
    return missingHeaders(peer, timestamp, nonce, signature, midHeaders.headSignature);
  const declared = header('content-length');
  if (declared === undefined && header('transfer-encoding') !== undefined)
    return { ok: false, code: 'INVALID_BODY', message: 'a request body must declare its Content-Length' };
  if (declared !== undefined && !/^\d{1,15}$/.test(declared))
    return { ok: false, code: 'INVALID_BODY', message: 'Content-Length must be a number of bytes' };
  const contentLength = declared === undefined ? 0 : Number(declared);
  // An unknown peer costs the same MAC as a known one: the answer and its timing say nothing.
  const secret = input.secretOf(peer) ?? 'herald-unknown-peer-placeholder-secret';
  const matches = macMatches(
    hmac(secret, headCanonical(peer, input.method, input.path, timestamp, nonce, contentLength)),
    signature,
  );
  if (!matches || input.secretOf(peer) === undefined) return refused;
  if (!/^\d{1,16}$/.test(timestamp) || Math.abs(Number(timestamp) - input.now) > input.windowMs)
    return {
      ok: false,
      code: 'STALE_TIMESTAMP',
      message: `${midHeaders.timestamp} is outside ±${input.windowMs / 1000} s of this server's clock`,
    };
  if (contentLength > input.maxBodyBytes)
    return { ok: false, code: 'BODY_TOO_LARGE', message: `request body is over ${input.maxBodyBytes} bytes` };
  return { ok: true, peer, nonce, contentLength };
}

/** The key of a request's nonce in a NonceCache (nonces are the peer's to choose, so per peer). */
export function nonceKey(peer: string, nonce: string): string {
  return `${peer}:${nonce}`;
}

/** Nonces this process saw in the replay window: a fast first filter only. A restart or another
 *  process does not know them; the database record is what refuses those replays. Every nonce it
 *  refuses was presented before, so the filter never refuses a request the database would accept. */
export interface NonceCache {
  /** Records the nonce; false if it was already there. */
  remember(nonce: string, expiresAt: number, now: number): boolean;
  /** Whether the nonce was recorded and has not expired (a replayed head is refused before its body). */
  has(nonce: string, now: number): boolean;
  size(): number;
}

export function createNonceCache(maxEntries = 1_000_000): NonceCache {
  const expiries = new Map<string, number>();
  let lastSweep = 0;
  return {
    remember(nonce, expiresAt, now) {
      if (now - lastSweep > 10_000 || expiries.size >= maxEntries) {
        lastSweep = now;
        for (const [key, at] of expiries) if (at < now) expiries.delete(key);
      }
      const seen = expiries.get(nonce);
      if (seen !== undefined && seen >= now) return false;
      // Full of live nonces: refuse rather than forget one (a flood cannot open a replay hole).
      if (expiries.size >= maxEntries) return false;
      expiries.set(nonce, expiresAt);
      return true;
    },
    has(nonce, now) {
      const expiresAt = expiries.get(nonce);
      return expiresAt !== undefined && expiresAt >= now;
    },
    size: () => expiries.size,
  };
}

export type VerifyResult =
  | { ok: true; peer: string; nonce: string }
  | { ok: false; code: MidErrorCode; message: string };

export interface VerifyInput {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array | string;
  now: number;
  windowMs: number;
  secretOf(peer: string): string | undefined;
  nonces: NonceCache;
}

export const replayedMessage = 'this request was already received (nonce reused)';

const noncePattern = /^[A-Za-z0-9_-]{16,128}$/;

export function verifyRequest(input: VerifyInput): VerifyResult {
  const header = (name: string) => {
    const value = input.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const peer = header(midHeaders.peer);
  const timestamp = header(midHeaders.timestamp);
  const nonce = header(midHeaders.nonce);
  const signature = header(midHeaders.signature);
  if (!peer || !timestamp || !nonce || !signature)
    return missingHeaders(peer, timestamp, nonce, signature, midHeaders.signature);
  const secret = input.secretOf(peer);
  if (secret === undefined) return { ok: false, code: 'BAD_SIGNATURE', message: unauthenticatedMessage };
  if (!/^\d{1,16}$/.test(timestamp))
    return { ok: false, code: 'BAD_SIGNATURE', message: `${midHeaders.timestamp} must be epoch milliseconds` };
  if (!noncePattern.test(nonce))
    return { ok: false, code: 'BAD_SIGNATURE', message: `${midHeaders.nonce} must be 16-128 URL-safe characters` };
  const expected = hmac(secret, canonical(peer, input.method, input.path, timestamp, nonce, sha256Hex(input.body)));
  if (!macMatches(expected, signature)) return { ok: false, code: 'BAD_SIGNATURE', message: unauthenticatedMessage };
  // Checked after the signature so an unauthenticated caller learns nothing about our clock.
  const skew = Number(timestamp) - input.now;
  if (Math.abs(skew) > input.windowMs) {
    return {
      ok: false,
      code: 'STALE_TIMESTAMP',
      message: `timestamp is ${Math.round(skew / 1000)} s from this server's clock (allowed ±${input.windowMs / 1000} s)`,
    };
  }
  if (!input.nonces.remember(nonceKey(peer, nonce), Number(timestamp) + input.windowMs, input.now)) {
    return { ok: false, code: 'REPLAYED', message: replayedMessage };
  }
  return { ok: true, peer, nonce };
}
