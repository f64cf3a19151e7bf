import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppError } from '../common/errors.ts';
import type { DkimKeyConfig } from '../config/schema.ts';

// DKIM signing, RFC 6376 with relaxed/relaxed canonicalization, rsa-sha256 and (RFC 8463)
// ed25519-sha256. Split in two steps so the expensive one (the private key operation) can run in a
// worker thread: prepareDkim() canonicalizes and hashes, signDkimData() does the crypto.

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKey: KeyObject;
  /** The PEM text, for handing the key to worker threads once at start. */
  pem: string;
}

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

/** Keys are parsed once, at start: a wrong file fails the start, not every message. */
export function loadDkimKeys(
  configs: readonly DkimKeyConfig[],
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Map<string, DkimKey[]> {
  const byDomain = new Map<string, DkimKey[]>();
  for (const config of configs) {
    const key = parseDkimKey(config, readFile);
    const list = byDomain.get(key.domain) ?? [];
    list.push(key);
    // RSA first: receivers that do not know ed25519 (many) look at the first signature they understand.
    list.sort((a, b) => (a.algorithm === b.algorithm ? 0 : a.algorithm === 'rsa-sha256' ? -1 : 1));
    byDomain.set(key.domain, list);
  }
  return byDomain;
}

export function parseDkimKey(config: DkimKeyConfig, readFile: (path: string) => string): DkimKey {
  let pem: string;
  let privateKey: KeyObject;
  try {
    pem = readFile(config.privateKeyFile);
    privateKey = createPrivateKey(pem);
  } catch (cause) {
    throw new AppError(
      'DKIM_KEY_INVALID',
      `DKIM key for ${config.domain} (selector ${config.selector}): cannot read ${config.privateKeyFile}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const expected = config.algorithm === 'rsa-sha256' ? 'rsa' : 'ed25519';
  if (privateKey.asymmetricKeyType !== expected) {
    throw new AppError(
      'DKIM_KEY_INVALID',
      `DKIM key ${config.privateKeyFile} for ${config.domain} is ${privateKey.asymmetricKeyType ?? 'not asymmetric'}, but ${config.algorithm} needs an ${expected} key`,
    );
  }
  return {
    domain: config.domain.toLowerCase(),
    selector: config.selector,
    algorithm: config.algorithm,
    privateKey,
    pem,
  };
}

/** RFC 6376 §3.4.4: WSP runs become one space, trailing WSP and trailing empty lines go, one final CRLF. */
export function canonicalizeBodyRelaxed(body: string): string {
  // Runs of WSP become one space; a lone space is already canonical, so it is not rewritten.
  let canonical = body.replace(/[ \t]+(?=\r\n|$)/g, '').replace(/[ \t]{2,}|\t/g, ' ');
  let end = canonical.length;
  while (end >= 2 && canonical.charCodeAt(end - 2) === 13 && canonical.charCodeAt(end - 1) === 10) end -= 2;
  canonical = canonical.slice(0, end);
  return canonical.length === 0 ? '' : `${canonical}\r\n`;
}

/** RFC 6376 §3.4.2: lower-case name, unfolded value with WSP runs as one space, trimmed; no CRLF. */
export function canonicalizeHeaderRelaxed(line: string): string {
  const colon = line.indexOf(':');
  const name = line.slice(0, colon).trim().toLowerCase();
  const value = line
    .slice(colon + 1)
    .replace(/\r\n(?=[ \t])/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
  return `${name}:${value}`;
}

export function bodyHash(body: string): string {
  return createHash('sha256').update(canonicalizeBodyRelaxed(body)).digest('base64');
}

export interface PreparedSignature {
  /** The DKIM-Signature header up to and including "b="; the signature is appended to it. */
  headerPrefix: string;
  /** What the private key signs: the canonicalized headers and the DKIM-Signature without b value. */
  data: string;
  algorithm: DkimAlgorithm;
}

export function prepareDkim(
  headers: readonly string[],
  bodyHashValue: string,
  key: DkimKey,
  nowMs: number,
): PreparedSignature {
  const byName = new Map<string, string>();
  for (const line of headers) {
    const name = line.slice(0, line.indexOf(':')).trim().toLowerCase();
    // §5.4.2: the last instance is signed first; the builder writes each of these once.
    byName.set(name, line);
  }
  const names = signedHeaderNames.filter((name) => byName.has(name));
  let data = '';
  for (const name of names) data += `${canonicalizeHeaderRelaxed(byName.get(name)!)}\r\n`;
  const headerPrefix = `DKIM-Signature: v=1; a=${key.algorithm}; c=relaxed/relaxed; d=${key.domain}; s=${key.selector}; t=${Math.floor(nowMs / 1_000)}; h=${names.join(':')}; bh=${bodyHashValue}; b=`;
  data += canonicalizeHeaderRelaxed(headerPrefix);
  return { headerPrefix, data, algorithm: key.algorithm };
}

export function signDkimData(data: string, algorithm: DkimAlgorithm, privateKey: KeyObject): string {
  if (algorithm === 'rsa-sha256') return sign('sha256', Buffer.from(data, 'utf8'), privateKey).toString('base64');
  // RFC 8463 §3: Ed25519 (pure) signs the SHA-256 hash of the data, not the data itself.
  return sign(null, createHash('sha256').update(data, 'utf8').digest(), privateKey).toString('base64');
}

/** Signs synchronously on this thread; returns the DKIM-Signature header lines to put first. */
export function signMessage(
  headers: readonly string[],
  body: string,
  keys: readonly DkimKey[],
  nowMs: number,
): string[] {
  if (keys.length === 0) return [];
  const hash = bodyHash(body);
  return keys.map((key) => {
    const prepared = prepareDkim(headers, hash, key, nowMs);
    return prepared.headerPrefix + signDkimData(prepared.data, key.algorithm, key.privateKey);
  });
}
