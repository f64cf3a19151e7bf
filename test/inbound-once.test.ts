import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { InboundWrite } from '../src/bounce/inbound-processor.ts';
import { createInboundRole, type InboundRole } from '../src/bounce/inbound-role.ts';
import { parseBounceMessage } from '../src/bounce/parse-bounce.ts';
import { inboundCounters, listInboundSamples } from '../src/bounce/qualification-store.ts';
import { loadVerpSigner } from '../src/bounce/verp-keys.ts';
import type { VerpSigner } from '../src/bounce/verp.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { bounceCorpusDir } from './support/corpus.ts';
import { describeEachDialect } from './support/databases.ts';

// Issue 12 item 9, inbound side: a received message's effects (log update, address event, sample,
// counters) are one fact. A write failing after the first ones answers 451, the sender retries
// the same message, and the retry must leave exactly what one delivery would have: on the old
// code the first attempt's writes stayed and the retry applied the bounce a second time.

const bounceDomain = 'bounces.once.test';

async function send(port: number, to: string, raw: string): Promise<{ code: number; response: string }> {
  const connection = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, socketTimeout: 10_000 });
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => resolve());
  });
  try {
    return await new Promise((resolve) => {
      connection.send({ from: '', to: [to] }, raw, (error, info) => {
        if (error) resolve({ code: (error as { responseCode?: number }).responseCode ?? 0, response: error.message });
        else resolve({ code: 250, response: info.response });
      });
    });
  } finally {
    connection.quit();
    connection.close();
  }
}

describeEachDialect('inbound message applied once', (context) => {
  let herald: Herald;
  let role: InboundRole;
  let port: number;
  let signer: VerpSigner;
  /** The write that fails next (once), if any. */
  let failAfter: InboundWrite | undefined;
  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig(
        {
          database: { url: context.url() },
          mta: { bounceDomain },
          inbound: { port: 0, sampleBytes: 4_096, keepSamples: 50 },
          bounce: { siteRulesFile: '/nonexistent/site.yaml' },
        },
        'test',
      ),
      logger: silentLogger,
    });
    role = createInboundRole(herald, {
      afterWrite(write) {
        if (write !== failAfter) return;
        failAfter = undefined;
        throw new Error(`injected failure after the ${write} write`);
      },
    });
    await role.start();
    signer = await loadVerpSigner(herald.store, herald.config, Date.now());
    port = role.address()!.port;
  });
  afterAll(async () => {
    await role?.stop();
    await herald?.close();
  });

  it('a hard bounce whose last write failed is applied once when the sender retries it', async () => {
    const file = 'lhost-postfix-04.eml';
    const email = (await parseBounceMessage(readFileSync(join(bounceCorpusDir, file)))).recipients[0]!.recipient;
    const now = Date.now();
    const { logIds } = await seedDelivery(herald.store.db, { now, recipients: [{ email }] });
    const logId = logIds[0]!;
    await herald.store.db
      .updateTable('delivery_logs')
      .set({ status: 'sent', attempts: 1, last_reply_code: 250, sent_at: now })
      .where('id', '=', logId)
      .execute();
    const verp = signer.address(logId, bounceDomain);
    const raw = readFileSync(join(bounceCorpusDir, file), 'latin1').replace(/^To:.*$/m, `To: ${verp}`);
    const before = await inboundCounters(herald.store);

    failAfter = 'address_events';
    const first = await send(port, verp, raw);
    expect(first.code).toBe(451);
    // Nothing of the failed attempt stays.
    const log = () =>
      herald.store.db
        .selectFrom('delivery_logs')
        .select(['status', 'updated_at'])
        .where('id', '=', logId)
        .executeTakeFirstOrThrow();
    expect((await log()).status).toBe('sent');

    const retried = await send(port, verp, raw);
    expect(retried).toMatchObject({ code: 250 });
    expect(retried.response).toContain('hard');
    const again = await send(port, verp, raw);
    expect(again).toMatchObject({ code: 250 });
    expect(again.response).toContain('duplicate');

    expect((await log()).status).toBe('failed');
    const events = await herald.store.db
      .selectFrom('address_events')
      .select(['source', 'type'])
      .where('delivery_log_id', '=', logId)
      .execute();
    expect(events).toEqual([{ source: 'bounce', type: 'hard' }]);
    const address = await herald.store.db
      .selectFrom('addresses')
      .select('state')
      .where('email', '=', email)
      .executeTakeFirstOrThrow();
    expect(address).toMatchObject({ state: 'quarantined' });
    const after = await inboundCounters(herald.store);
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    expect({ received: delta('received'), hard: delta('hard'), duplicate: delta('duplicate') }).toEqual({
      received: 1,
      hard: 1,
      duplicate: 1,
    });
  });

  it('a message kept as a sample whose counters failed is sampled and counted once', async () => {
    const logId = 999_999_000 + (context.dialect === 'sqlite' ? 1 : 2);
    const verp = signer.address(logId, bounceDomain);
    const raw = [
      'From: Someone <someone@elsewhere.test>',
      `To: ${verp}`,
      'Subject: lunch on friday?',
      `Message-ID: <lunch-${context.dialect}@elsewhere.test>`,
      '',
      'Are you free on friday?',
      '',
    ].join('\r\n');
    const before = await inboundCounters(herald.store);
    const samplesOf = async () =>
      (await listInboundSamples(herald.store, 50)).filter((s) => s.raw.includes(`lunch-${context.dialect}@`)).length;

    failAfter = 'counters';
    expect((await send(port, verp, raw)).code).toBe(451);
    expect(await samplesOf()).toBe(0);
    expect(await send(port, verp, raw)).toMatchObject({ code: 250 });
    expect(await send(port, verp, raw)).toMatchObject({ code: 250 });

    expect(await samplesOf()).toBe(1);
    const after = await inboundCounters(herald.store);
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    expect({ received: delta('received'), notBounce: delta('not_bounce'), duplicate: delta('duplicate') }).toEqual({
      received: 1,
      notBounce: 1,
      duplicate: 1,
    });
  });
});
