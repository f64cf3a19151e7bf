import { timingSafeEqual } from 'node:crypto';
import { createHmacSha256, type HmacSha256 } from './hmac-sha256.ts';

// Tracking tokens: what a tracked URL carries. Binary, then base64url, so a link stays short:
//   version · kind · key id · delivery id · log id · [link index · occurrence] · issued-at · HMAC
// The HMAC-SHA256 (truncated to 16 bytes, 128 bits) covers every byte before it, so nothing in a
// token can be changed, and the redirect target is never read from the request: it is looked up
// from (delivery, link index). Pure: time is passed in.

export type TokenKind = 'click' | 'open' | 'mirror' | 'unsubscribe';

export interface TokenClaims {
  kind: TokenKind;
  deliveryId: number;
  logId: number;
  /** Click tokens: the link's index in the delivery's tracked links, and which rendering of it (loops). */
  linkIndex?: number;
  occurrence?: number;
  /** Epoch seconds when the token was made (the message was built then). */
  issuedAt: number;
}

export interface TrackingKey {
  /** 1-16 characters of [A-Za-z0-9_-]; written in every token. */
  id: string;
  secret: string;
  /** Epoch ms. The newest key signs; older ones verify until a newer one is `graceMs` old. */
  createdAt: number;
}

export interface KeyRing {
  signingKeyId: string;
  sign(claims: TokenClaims): string;
  verify(token: string, nowMs: number): VerifyResult;
}

export type VerifyResult =
  | { ok: true; claims: TokenClaims; keyId: string }
  | { ok: false; reason: 'malformed' | 'unknown_key' | 'retired_key' | 'bad_signature' | 'expired' };

/** Longest token accepted; a real one is about 40-60 characters. */
export const maxTokenLength = 160;
const macBytes = 16;
const version = 1;
const kindCodes: Record<TokenKind, number> = { click: 1, open: 2, mirror: 3, unsubscribe: 4 };
const kindNames: Array<TokenKind | undefined> = [undefined, 'click', 'open', 'mirror', 'unsubscribe'];
const keyIdPattern = /^[A-Za-z0-9_-]{1,16}$/;
const tokenPattern = /^[A-Za-z0-9_-]+$/;
const base64urlAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function isValidKeyId(id: string): boolean {
  return keyIdPattern.test(id);
}

export interface KeyRingOptions {
  keys: readonly TrackingKey[];
  /** How long a key still verifies after a newer key was created. */
  graceMs: number;
  /** Tokens older than this no longer verify. */
  ttlMs: number;
}

export function createKeyRing(options: KeyRingOptions): KeyRing {
  if (options.keys.length === 0) throw new Error('a key ring needs at least one key');
  const sorted = [...options.keys].sort((a, b) => a.createdAt - b.createdAt);
  const entries = new Map<string, { hmac: HmacSha256; retiredAt: number }>();
  sorted.forEach((key, i) => {
    if (!isValidKeyId(key.id))
      throw new Error(`tracking key id "${key.id}" must be 1-16 characters of A-Z a-z 0-9 _ -`);
    const next = sorted[i + 1];
    entries.set(key.id, {
      hmac: createHmacSha256(Buffer.from(key.secret, 'utf8')),
      retiredAt: next ? next.createdAt + options.graceMs : Infinity,
    });
  });
  // The full 32-byte MAC of the token being signed or verified; its first macBytes are used.
  const mac = new Uint8Array(32);
  const signing = sorted[sorted.length - 1]!;
  const signingHmac = entries.get(signing.id)!.hmac;
  const signingKid = Buffer.from(signing.id, 'ascii');

  return {
    signingKeyId: signing.id,
    sign(claims) {
      const body = encodeBody(claims, signingKid);
      signingHmac.mac(body, body.length, mac);
      const token = Buffer.allocUnsafe(body.length + macBytes);
      token.set(body);
      token.set(mac.subarray(0, macBytes), body.length);
      return token.toString('base64url');
    },
    // The hot path of every /r/ redirect: one decode, no re-encode, one HMAC over the body bytes.
    verify(token, nowMs) {
      if (
        token.length === 0 ||
        token.length > maxTokenLength ||
        !tokenPattern.test(token) ||
        !isCanonicalBase64url(token)
      )
        return { ok: false, reason: 'malformed' };
      const bytes = Buffer.from(token, 'base64url');
      if (bytes.length <= macBytes + 4) return { ok: false, reason: 'malformed' };
      const macAt = bytes.length - macBytes;
      const decoded = decodeBody(bytes, macAt);
      if (!decoded) return { ok: false, reason: 'malformed' };
      // Map keys are validated ids, so an unknown (or invalid) id simply misses.
      const key = entries.get(decoded.keyId);
      if (!key) return { ok: false, reason: 'unknown_key' };
      key.hmac.mac(bytes, macAt, mac);
      if (!timingSafeEqual(mac.subarray(0, macBytes), bytes.subarray(macAt)))
        return { ok: false, reason: 'bad_signature' };
      if (nowMs > key.retiredAt) return { ok: false, reason: 'retired_key' };
      if (nowMs > decoded.claims.issuedAt * 1_000 + options.ttlMs) return { ok: false, reason: 'expired' };
      return { ok: true, claims: decoded.claims, keyId: decoded.keyId };
    },
  };
}

/**
 * Decoding ignores junk and unused trailing bits silently; a token is accepted only in its one
 * canonical spelling (no length of 4n+1, unused bits of the last character zero), so two strings
 * never name the same token. Cheaper than re-encoding and comparing.
 */
function isCanonicalBase64url(token: string): boolean {
  const rest = token.length % 4;
  if (rest === 1) return false;
  if (rest === 0) return true;
  const last = base64urlAlphabet.indexOf(token[token.length - 1]!);
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

function encodeBody(claims: TokenClaims, kid: Buffer): Buffer {
  const out: number[] = [version, kindCodes[claims.kind], kid.length, ...kid];
  writeVarint(out, claims.deliveryId);
  writeVarint(out, claims.logId);
  if (claims.kind === 'click') {
    writeVarint(out, claims.linkIndex ?? 0);
    writeVarint(out, claims.occurrence ?? 0);
  }
  writeVarint(out, claims.issuedAt);
  return Buffer.from(out);
}

/** Decodes the body, bytes[0, end): everything before the MAC. */
function decodeBody(bytes: Buffer, end: number): { claims: TokenClaims; keyId: string } | undefined {
  if (bytes[0] !== version) return undefined;
  const kind = kindNames[bytes[1] ?? 0];
  const kidLength = bytes[2] ?? 0;
  if (!kind || kidLength < 1 || kidLength > 16 || end < 3 + kidLength) return undefined;
  const keyId = bytes.toString('latin1', 3, 3 + kidLength);
  const cursor = { at: 3 + kidLength, end };
  const deliveryId = readVarint(bytes, cursor);
  const logId = readVarint(bytes, cursor);
  let linkIndex: number | undefined;
  let occurrence: number | undefined;
  if (kind === 'click') {
    linkIndex = readVarint(bytes, cursor);
    occurrence = readVarint(bytes, cursor);
  }
  const issuedAt = readVarint(bytes, cursor);
  if (cursor.at !== end || deliveryId === undefined || logId === undefined || issuedAt === undefined) return undefined;
  if (kind !== 'click') return { claims: { kind, deliveryId, logId, issuedAt }, keyId };
  if (linkIndex === undefined || occurrence === undefined) return undefined;
  return { claims: { kind, deliveryId, logId, linkIndex, occurrence, issuedAt }, keyId };
}

// LEB128 over JavaScript numbers (ids and seconds stay far below 2^53).
function writeVarint(out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new Error(`token field must be a non-negative safe integer (got ${value})`);
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function readVarint(bytes: Buffer, cursor: { at: number; end: number }): number | undefined {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (cursor.at >= cursor.end) return undefined;
    const byte = bytes[cursor.at++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return Number.isSafeInteger(value) ? value : undefined;
    scale *= 0x80;
  }
  return undefined;
}
