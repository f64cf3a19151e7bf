import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AppError } from '../common/errors.ts';
import type { DkimKeyConfig } from '../config/schema.ts';
import type { SigningKey } from './dkim-core.mjs';

// DKIM keys: read and checked once, at start. The signing itself is dkim-core.mjs (plain
// JavaScript, so the signing workers run it too).

export { canonicalizeBodyRelaxed, canonicalizeHeaderRelaxed, signMessage } from './dkim-core.mjs';

export interface DkimKey extends SigningKey {
  /** The PEM text, for handing the key to worker threads once at start. */
  pem: string;
}

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
