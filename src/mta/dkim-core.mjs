// @ts-check
// DKIM signing, RFC 6376 with relaxed/relaxed canonicalization, rsa-sha256 and (RFC 8463)
// ed25519-sha256: canonicalize, hash, sign. Plain JavaScript (checked by tsc through its JSDoc) on
// purpose: the signing workers (dkim-worker.mjs) run it without a TypeScript loader, so the whole
// signature — body hash included — is computed off the MTA's main thread. dkim.ts loads the keys.
import { createHash, sign } from 'node:crypto';

/** @typedef {'rsa-sha256' | 'ed25519-sha256'} DkimAlgorithm */

/**
 * A signing key as the signer needs it (dkim.ts's DkimKey adds where it came from).
 * @typedef {object} SigningKey
 * @property {string} domain
 * @property {string} selector
 * @property {DkimAlgorithm} algorithm
 * @property {import('node:crypto').KeyObject} privateKey
 */

/** Headers signed when present (RFC 6376 §5.4.1 recommends From and the ones readers see). */
// RFC 8058 §4: a one-click unsubscribe is only honoured when the signature covers both List-Unsubscribe headers.
export const signedHeaderNames = [
  'from',
  'to',
  'subject',
  'date',
  'message-id',
  'mime-version',
  'content-type',
  'reply-to',
  'list-unsubscribe',
  'list-unsubscribe-post',
];

/**
 * RFC 6376 §3.4.4: WSP runs become one space, trailing WSP and trailing empty lines go, one final CRLF.
 * @param {string} body
 * @returns {string}
 */
export function canonicalizeBodyRelaxed(body) {
  // Runs of WSP become one space; a lone space is already canonical, so it is not rewritten.
  let canonical = body.replace(/[ \t]+(?=\r\n|$)/g, '').replace(/[ \t]{2,}|\t/g, ' ');
  let end = canonical.length;
  while (end >= 2 && canonical.charCodeAt(end - 2) === 13 && canonical.charCodeAt(end - 1) === 10) end -= 2;
  canonical = canonical.slice(0, end);
  return canonical.length === 0 ? '' : `${canonical}\r\n`;
}

/**
 * RFC 6376 §3.4.2: lower-case name, unfolded value with WSP runs as one space, trimmed; no CRLF.
 * @param {string} line
 * @returns {string}
 */
export function canonicalizeHeaderRelaxed(line) {
  const colon = line.indexOf(':');
  const name = line.slice(0, colon).trim().toLowerCase();
  const value = line
    .slice(colon + 1)
    .replace(/\r\n(?=[ \t])/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return `${name}:${value}`;
}

/**
 * @param {string} body
 * @returns {string} the base64 SHA-256 of the relaxed body (the bh= tag)
 */
function bodyHash(body) {
  return createHash('sha256').update(canonicalizeBodyRelaxed(body)).digest('base64');
}

/**
 * The DKIM-Signature header lines for a message, in the order they go on top of it.
 * @param {readonly string[]} headers the message's header fields, one string each (folded lines included)
 * @param {string} body
 * @param {readonly SigningKey[]} keys
 * @param {number} nowMs the t= tag, in milliseconds
 * @returns {string[]}
 */
export function signMessage(headers, body, keys, nowMs) {
  if (keys.length === 0) return [];
  const hash = bodyHash(body);
  /** @type {Map<string, string>} */
  const byName = new Map();
  for (const line of headers) {
    // §5.4.2: the last instance is signed first; the builder writes each of these once.
    byName.set(line.slice(0, line.indexOf(':')).trim().toLowerCase(), line);
  }
  const names = signedHeaderNames.filter((name) => byName.has(name));
  let signedHeaders = '';
  for (const name of names)
    signedHeaders += `${canonicalizeHeaderRelaxed(/** @type {string} */ (byName.get(name)))}\r\n`;
  return keys.map((key) => {
    const prefix = `DKIM-Signature: v=1; a=${key.algorithm}; c=relaxed/relaxed; d=${key.domain}; s=${key.selector}; t=${Math.floor(nowMs / 1_000)}; h=${names.join(':')}; bh=${hash}; b=`;
    return prefix + signData(signedHeaders + canonicalizeHeaderRelaxed(prefix), key);
  });
}

/**
 * The b= value: what the private key makes of the canonicalized headers and DKIM-Signature.
 * @param {string} data
 * @param {SigningKey} key
 * @returns {string}
 */
function signData(data, key) {
  if (key.algorithm === 'rsa-sha256')
    return sign('sha256', Buffer.from(data, 'utf8'), key.privateKey).toString('base64');
  // RFC 8463 §3: Ed25519 (pure) signs the SHA-256 hash of the data, not the data itself.
  return sign(null, createHash('sha256').update(data, 'utf8').digest(), key.privateKey).toString('base64');
}
