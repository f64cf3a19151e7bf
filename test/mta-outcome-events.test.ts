import { PassThrough } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultVerdict } from '../src/bounce/default-verdict.ts';
import { manualClock } from '../src/common/clock.ts';
import { createLogger } from '../src/common/logger.ts';
import { configSchema } from '../src/config/schema.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createMtaQualification } from '../src/quarantine/mta-hooks.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from '../src/quarantine/types.ts';
import { startSmtpSink, type SmtpSink } from '../src/sim/smtp-sink.ts';
import { type DialectContext, describeEachDialect } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// Issue 12 item 9: an MTA outcome and the address event it causes commit together. While the
// address event cannot be written (a trigger refuses it: a real database failure, no mock), the
// outcome is not committed either; on main the log became `failed` with no event, and a crash then
// lost the event for good. Once the write works again, both appear.

let sink: SmtpSink;
beforeAll(async () => {
  sink = await startSmtpSink({
    hostname: 'mx.events.test',
    behaviour: {
      rcptRules: [{ localPartPrefix: 'gone', reply: { code: 550, enhanced: '5.1.1', text: 'User unknown' } }],
    },
  });
});
afterAll(async () => {
  await sink.close();
});

/** A trigger refuses every address event: a real database failure, no mock. */
async function refuseAddressEvents(context: DialectContext): Promise<() => Promise<void>> {
  const db = context.store().db;
  if (context.dialect === 'sqlite') {
    await sql`create trigger refuse_events before insert on address_events begin select raise(abort, 'address events refused'); end`.execute(
      db,
    );
    return async () => void (await sql`drop trigger if exists refuse_events`.execute(db));
  }
  await sql`create or replace function refuse_events() returns trigger language plpgsql as $$ begin raise exception 'address events refused'; end $$`.execute(
    db,
  );
  await sql`create trigger refuse_events before insert on address_events for each row execute function refuse_events()`.execute(
    db,
  );
  return async () => void (await sql`drop trigger if exists refuse_events on address_events`.execute(db));
}

/** An MTA sending to the sink, with quarantine effects in its outcome transactions and its log kept. */
function startRecordedMta(context: DialectContext, domain: string, mtaConfig: Record<string, unknown> = {}) {
  const store = context.store();
  const logLines: string[] = [];
  const destination = new PassThrough();
  destination.on('data', (chunk: Buffer) => logLines.push(chunk.toString()));
  const recorder = { add: () => {}, flush: async () => {}, close: async () => {} };
  const hooks = createMtaQualification({ recorder, settings: DEFAULT_QUARANTINE_SETTINGS, clock: manualClock() });
  const config = configSchema.parse({
    mta: {
      routes: [{ match: domain, host: sink.host, port: sink.port }],
      resolverServers: ['127.0.0.1:9'],
      pollIntervalMs: 20,
      ...mtaConfig,
    },
  }).mta;
  const mta = createMta({
    store: createMtaStore(store),
    nodeId: `events-${context.dialect}-${domain}`,
    config,
    classify: defaultVerdict,
    logger: createLogger({ level: 'warn', destination }),
    outcomeEffects: hooks.applyWithin,
    onOutcomes: hooks.onOutcomes,
    outcomeFlushIntervalMs: 10,
  });
  const linesWith = (text: string) => logLines.filter((line) => line.includes(text)).length;
  return { mta, linesWith };
}

describeEachDialect('MTA outcome and address events', (context) => {
  it('commit together: a failing address-event write holds the outcome back; nothing is lost', async () => {
    const store = context.store();
    const domain = `events-${context.dialect}.test`;
    const email = `gone.1@${domain}`;
    const { logIds } = await seedDelivery(store.db, {
      now: Date.now(),
      recipients: [{ email, data: { first_name: 'Pat' } }],
    });
    const logId = logIds[0]!;
    const allowEvents = await refuseAddressEvents(context);
    const { mta, linesWith } = startRecordedMta(context, domain);
    const row = () =>
      store.db
        .selectFrom('delivery_logs')
        .select(['status', 'failure_reason'])
        .where('id', '=', logId)
        .executeTakeFirstOrThrow();
    const events = async () =>
      (await store.db.selectFrom('address_events').select('email').where('delivery_log_id', '=', logId).execute())
        .length;
    await mta.start();
    try {
      await waitFor(() => linesWith('address events refused') > 0, 'the refused write', 20_000);
      // The invariant: a final outcome is never committed without its address event.
      expect(await row()).toMatchObject({ status: 'sending' });
      expect(await events()).toBe(0);
      await allowEvents();
      await waitFor(async () => (await row()).status === 'failed', 'the outcome written after the retry', 20_000);
      expect(await row()).toMatchObject({ status: 'failed', failure_reason: 'user_unknown' });
      expect(await events()).toBe(1);
      const address = await store.db
        .selectFrom('addresses')
        .select('state')
        .where('email', '=', email)
        .executeTakeFirst();
      expect(address?.state).toBe('quarantined');
    } finally {
      await allowEvents();
      await mta.stop();
    }
  });

  // While outcomes cannot be written, every message sent meanwhile exists only in memory: a crash
  // would send it again. The MTA stops claiming once maxQueued messages are in hand or unwritten;
  // before, it went on sending the whole delivery with nothing recorded.
  it('stops sending while its outcomes cannot be written, and sends each message once after', async () => {
    const store = context.store();
    const domain = `backlog-${context.dialect}.test`;
    const recipients = [`gone.1@${domain}`, ...Array.from({ length: 300 }, (_, i) => `ok.${i}@${domain}`)];
    const { deliveryId } = await seedDelivery(store.db, {
      now: Date.now(),
      recipients: recipients.map((email) => ({ email, data: { first_name: 'Pat' } })),
    });
    const maxQueued = 20;
    const allowEvents = await refuseAddressEvents(context);
    const { mta, linesWith } = startRecordedMta(context, domain, { maxQueued, claimBatchSize: 10 });
    const accepted = () => recipients.reduce((sum, email) => sum + sink.acceptedCount(email), 0);
    const recorded = async () =>
      (
        await store.db
          .selectFrom('delivery_logs')
          .select('id')
          .where('delivery_id', '=', deliveryId)
          .where('status', 'in', ['sent', 'failed'])
          .execute()
      ).length;
    await mta.start();
    try {
      await waitFor(() => linesWith('address events refused') >= 3, 'three refused writes', 30_000);
      expect(linesWith('sending paused')).toBeGreaterThan(0);
      expect(accepted() - (await recorded())).toBeLessThanOrEqual(maxQueued);
      await allowEvents();
      await waitFor(async () => (await recorded()) === recipients.length, 'every outcome recorded', 30_000);
      expect(recipients.filter((email) => sink.acceptedCount(email) !== (email.startsWith('ok.') ? 1 : 0))).toEqual([]);
    } finally {
      await allowEvents();
      await mta.stop();
    }
  });
});
