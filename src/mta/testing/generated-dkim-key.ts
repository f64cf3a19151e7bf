import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { parseDkimKey, type DkimKey } from '../dkim.ts';

// A fresh DKIM key for tests, parsed as the MTA parses a configured one, with the public key a
// verifier needs (dkim-verify.ts).

export function generatedDkimKey(
  algorithm: DkimKey['algorithm'],
  selector: string,
  domain = 'brand.test',
): { key: DkimKey; publicKey: KeyObject } {
  const pair =
    algorithm === 'rsa-sha256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
  const pem = pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = parseDkimKey({ domain, selector, privateKeyFile: selector, algorithm }, () => pem);
  return { key, publicKey: pair.publicKey };
}
