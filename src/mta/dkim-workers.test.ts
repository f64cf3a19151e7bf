import { describe, expect, it } from 'vitest';
import { messageFromDataBytes } from '../sim/data-end-scanner.ts';
import { verifyDkimSignatures } from './dkim-verify.ts';
import { createWorkerSigner } from './dkim-workers.ts';
import type { MessageInput } from './message-builder.mjs';
import { generatedDkimKey } from './testing/generated-dkim-key.ts';

function input(i: number): MessageInput {
  return {
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
  };
}

/** The message an SMTP DATA stream carries: without its final dot and dot-stuffing. */
function messageOf(data: Buffer): string {
  return messageFromDataBytes(data).toString('utf8');
}

describe('DKIM signing in worker threads', () => {
  it('builds messages whose RSA and Ed25519 signatures verify, many of them signed concurrently', async () => {
    const rsa = generatedDkimKey('rsa-sha256', 'r');
    const ed = generatedDkimKey('ed25519-sha256', 'e');
    const keys = [rsa.key, ed.key];
    const signer = createWorkerSigner(keys, 2);
    try {
      const signed = await Promise.all(
        Array.from({ length: 40 }, (_, i) => signer.signedMessageData(input(i), [], keys, 0)),
      );
      for (const data of signed) {
        const checks = verifyDkimSignatures(messageOf(data), (_d, _s, algorithm) =>
          algorithm === 'rsa-sha256' ? rsa.publicKey : ed.publicKey,
        );
        expect(checks.map((check) => check.signatureOk && check.bodyHashOk)).toEqual([true, true]);
      }
    } finally {
      await signer.close();
    }
  });
  it('builds, signs and encodes whole messages, each one its own bytes of a shared batch', async () => {
    const { key, publicKey } = generatedDkimKey('ed25519-sha256', 'e');
    const signer = createWorkerSigner([key], 1);
    try {
      // Lengths differ, some characters take several bytes, some lines start with a dot: a wrong
      // offset into the batch's buffer, or a missing dot-stuffing, fails a check below.
      const varied = (i: number): MessageInput => ({
        ...input(i),
        fromName: 'Brand',
        subject: `Été ${i}`,
        html: null,
        text: `${'é'.repeat(i)}\n.hidden line ${i}\n${'x'.repeat(i * 7)}`,
      });
      const unsubscribe = [
        'List-Unsubscribe: <https://t.brand.test/u/1>',
        'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      ];
      // A job that fails in the worker (a subject that is not a string) fails alone, in the same batch.
      const broken = { ...varied(99), subject: 5 as unknown as string };
      const [messages, failure] = await Promise.all([
        Promise.all(Array.from({ length: 30 }, (_, i) => signer.signedMessageData(varied(i), unsubscribe, [key], 0))),
        signer.signedMessageData(broken, [], [key], 0).catch((error: Error) => error),
      ]);
      expect(failure).toBeInstanceOf(Error);
      expect((failure as Error).message).toMatch(/^DKIM signing worker: /);
      for (const [i, data] of messages.entries()) {
        const text = data.toString('utf8');
        expect(text.endsWith('\r\n.\r\n')).toBe(true);
        expect(text).toContain(`\r\n..hidden line ${i}\r\n`);
        expect(text).toContain(`\r\nTo: r${i}@x.test\r\n`);
        const checks = verifyDkimSignatures(messageOf(data), () => publicKey);
        expect(checks.map((check) => check.signatureOk && check.bodyHashOk)).toEqual([true]);
        expect(text).toMatch(/; h=[a-z:-]*:list-unsubscribe:list-unsubscribe-post;/);
      }
      // The worker is still there for the next batch.
      await expect(signer.signedMessageData(varied(1), [], [key], 0)).resolves.toBeInstanceOf(Buffer);
    } finally {
      await signer.close();
    }
  });
  it('replaces a worker that stops after it has worked: its batch fails, the next ones are signed', async () => {
    const { key } = generatedDkimKey('ed25519-sha256', 'e');
    const stopsOnSecondBatch = new URL('../../test/support/dkim-worker-stops-on-second-batch.mjs', import.meta.url);
    const signer = createWorkerSigner([key], 1, stopsOnSecondBatch);
    try {
      const sign = async () => (await signer.signedMessageData(input(1), [], [key], 0)).toString();
      await expect(sign()).resolves.toBe('batch 1');
      await expect(sign()).rejects.toThrow(/DKIM signing worker stopped \(exit code 3\)/);
      // A new worker (its own first batch), not a signer failed for good.
      await expect(sign()).resolves.toBe('batch 1');
    } finally {
      await signer.close();
    }
  });
  it('fails the signatures asked of a worker that cannot start, instead of waiting for ever', async () => {
    const key = { ...generatedDkimKey('ed25519-sha256', 'e').key, pem: 'not a key' };
    const signer = createWorkerSigner([key], 1);
    try {
      await expect(signer.signedMessageData(input(1), [], [key], 0)).rejects.toThrow();
      await expect(signer.signedMessageData(input(2), [], [key], 0)).rejects.toThrow();
    } finally {
      await signer.close();
    }
  });
});
