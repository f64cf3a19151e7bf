import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseDkimKey } from './dkim.ts';
import { verifyDkimSignatures } from './dkim-verify.ts';
import { createWorkerSigner } from './dkim-workers.ts';
import { createMessageBuilder, serializeMessage } from './message-builder.ts';

describe('DKIM signing in worker threads', () => {
  it('produces signatures that verify, for many messages signed concurrently', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ed = generateKeyPairSync('ed25519');
    const keys = [
      parseDkimKey({ domain: 'brand.test', selector: 'r', privateKeyFile: 'r', algorithm: 'rsa-sha256' }, () =>
        rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ),
      parseDkimKey({ domain: 'brand.test', selector: 'e', privateKeyFile: 'e', algorithm: 'ed25519-sha256' }, () =>
        ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ),
    ];
    const signer = createWorkerSigner(keys, 2);
    try {
      const builder = createMessageBuilder();
      const messages = Array.from({ length: 40 }, (_, i) =>
        builder.build({
          logId: i,
          fromAddress: 'a@brand.test',
          fromName: null,
          replyTo: null,
          to: `r${i}@x.test`,
          subject: `S ${i}`,
          html: `<p>${i}</p>`,
          text: `${i}`,
          date: 0,
          bounceDomain: 'b.test',
        }),
      );
      const signed = await Promise.all(messages.map((message) => signer.sign(message.headers, message.body, keys, 0)));
      for (const [i, signatures] of signed.entries()) {
        const raw = serializeMessage([...signatures, ...messages[i]!.headers], messages[i]!.body);
        const checks = verifyDkimSignatures(raw, (_d, _s, algorithm) =>
          algorithm === 'rsa-sha256' ? rsa.publicKey : ed.publicKey,
        );
        expect(checks.map((check) => check.signatureOk && check.bodyHashOk)).toEqual([true, true]);
      }
    } finally {
      await signer.close();
    }
  });
  it('fails the signatures asked of a worker that cannot start, instead of waiting for ever', async () => {
    const ed = generateKeyPairSync('ed25519');
    const key = {
      ...parseDkimKey({ domain: 'brand.test', selector: 'e', privateKeyFile: 'e', algorithm: 'ed25519-sha256' }, () =>
        ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ),
      pem: 'not a key',
    };
    const signer = createWorkerSigner([key], 1);
    try {
      await expect(signer.sign(['From: a@brand.test'], 'body\r\n', [key], 0)).rejects.toThrow();
      await expect(signer.sign(['From: a@brand.test'], 'body\r\n', [key], 0)).rejects.toThrow();
    } finally {
      await signer.close();
    }
  });
});
