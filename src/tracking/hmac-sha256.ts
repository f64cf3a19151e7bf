import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

// HMAC-SHA256 for tracking tokens, by node:crypto (OpenSSL): verified on every /r/ redirect,
// signed 20+ times per tracked message. The key is imported once (a KeyObject), not per MAC.

export interface HmacSha256 {
  /** Writes HMAC-SHA256(key, message[0, length)) into out[0, 32). */
  mac(message: Uint8Array, length: number, out: Uint8Array): void;
}

export function createHmacSha256(key: Uint8Array): HmacSha256 {
  // createSecretKey refuses an empty key; HMAC (RFC 2104) allows it, as node:crypto does for a buffer.
  const secret: KeyObject | Uint8Array = key.length > 0 ? createSecretKey(key) : key;
  return {
    mac(message, length, out) {
      out.set(
        createHmac('sha256', secret)
          .update(length === message.length ? message : message.subarray(0, length))
          .digest(),
      );
    },
  };
}
