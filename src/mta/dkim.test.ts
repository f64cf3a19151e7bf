import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalizeBodyRelaxed, canonicalizeHeaderRelaxed, loadDkimKeys, signMessage } from './dkim.ts';
import { verifyDkimSignatures } from './dkim-verify.ts';
import { createMessageBuilder, serializeMessage } from './message-builder.mjs';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const pems: Record<string, string> = {
  'rsa.pem': rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  'ed.pem': ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
};
const readFile = (path: string) => {
  const pem = pems[path];
  if (!pem) throw new Error(`ENOENT: ${path}`);
  return pem;
};
const publicKeys: Record<string, KeyObject> = { 'rsa-sha256': rsa.publicKey, 'ed25519-sha256': ed.publicKey };

describe('DKIM canonicalization (RFC 6376 §3.4 examples)', () => {
  it('relaxes headers', () => {
    expect(canonicalizeHeaderRelaxed('A: X')).toBe('a:X');
    expect(canonicalizeHeaderRelaxed('B : Y\t\r\n\tZ  ')).toBe('b:Y Z');
  });
  it('relaxes bodies', () => {
    expect(canonicalizeBodyRelaxed(' C \r\nD \t E\r\n\r\n\r\n')).toBe(' C\r\nD E\r\n');
    expect(canonicalizeBodyRelaxed('\r\n\r\n')).toBe('');
    expect(canonicalizeBodyRelaxed('no final break')).toBe('no final break\r\n');
  });
});

describe('DKIM signing', () => {
  const keys = loadDkimKeys(
    [
      { domain: 'Brand.test', selector: 'ed1', privateKeyFile: 'ed.pem', algorithm: 'ed25519-sha256' },
      { domain: 'brand.test', selector: 's1', privateKeyFile: 'rsa.pem', algorithm: 'rsa-sha256' },
    ],
    readFile,
  );

  it('signs with RSA first, then Ed25519, and both verify independently', () => {
    const built = createMessageBuilder().build({
      logId: 7,
      fromAddress: 'news@brand.test',
      fromName: 'Brand',
      replyTo: null,
      to: 'bob@example.test',
      subject: 'Ünïcode subject that is long enough to be folded into several encoded words, surely',
      html: '<p>Hi   Bob</p>  \n\n\n',
      text: 'Hi  Bob \t\nBye',
      date: Date.UTC(2026, 0, 1),
      bounceDomain: 'b.test',
    });
    const signatures = signMessage(built.headers, built.body, keys.get('brand.test')!, Date.UTC(2026, 0, 1));
    expect(signatures).toHaveLength(2);
    expect(signatures[0]).toMatch(
      /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=brand\.test; s=s1; t=1767225600; h=from:to:subject:date:message-id:mime-version:content-type; bh=/,
    );
    const raw = serializeMessage([...signatures, ...built.headers], built.body);
    const checks = verifyDkimSignatures(raw, (_domain, _selector, algorithm) => publicKeys[algorithm]!);
    expect(checks.map((check) => [check.algorithm, check.bodyHashOk, check.signatureOk])).toEqual([
      ['rsa-sha256', true, true],
      ['ed25519-sha256', true, true],
    ]);
  });

  it('fails verification when a signed header is changed', () => {
    const built = createMessageBuilder().build({
      logId: 8,
      fromAddress: 'a@brand.test',
      fromName: null,
      replyTo: null,
      to: 'c@example.test',
      subject: 'Original',
      html: null,
      text: 'x',
      date: 0,
      bounceDomain: 'b.test',
    });
    const raw = serializeMessage(
      [...signMessage(built.headers, built.body, keys.get('brand.test')!, 0), ...built.headers],
      built.body,
    ).replace('Subject: Original', 'Subject: Forged');
    const checks = verifyDkimSignatures(raw, (_d, _s, algorithm) => publicKeys[algorithm]!);
    expect(checks.every((check) => check.bodyHashOk && !check.signatureOk)).toBe(true);
  });

  it('rejects a key of the wrong type and an unreadable file with DKIM_KEY_INVALID', () => {
    expect(() =>
      loadDkimKeys([{ domain: 'x.test', selector: 's', privateKeyFile: 'ed.pem', algorithm: 'rsa-sha256' }], readFile),
    ).toThrow(/needs an rsa key/);
    expect(() =>
      loadDkimKeys(
        [{ domain: 'x.test', selector: 's', privateKeyFile: 'missing.pem', algorithm: 'rsa-sha256' }],
        readFile,
      ),
    ).toThrow(expect.objectContaining({ code: 'DKIM_KEY_INVALID' }));
  });
});
