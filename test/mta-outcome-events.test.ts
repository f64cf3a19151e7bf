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
import { describeEachDialect } from './support/databases.ts';
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
    if (context.dialect === 'sqlite') {
      await sql`create trigger refuse_events before insert on address_events begin select raise(abort, 'address events refused'); end`.execute(
        store.db,
      );
    } else {
      await sql`create function refuse_events() returns trigger language plpgsql as $$ begin raise exception 'address events refused'; end $$`.execute(
        store.db,
      );
      await sql`create trigger refuse_events before insert on address_events for each row execute function refuse_events()`.execute(
        store.db,
      );
    }
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
      },
    }).mta;
    const mta = createMta({
      store: createMtaStore(store),
      nodeId: `events-${context.dialect}`,
      config,
      classify: defaultVerdict,
      logger: createLogger({ level: 'error', destination }),
      outcomeEffects: hooks.applyWithin,
      onOutcomes: hooks.onOutcomes,
      outcomeFlushIntervalMs: 10,
    });
    const row = () =>
      store.db
        .selectFrom('delivery_logs')
        .select(['status', 'failure_reason'])
        .where('id', '=', logId)
        .executeTakeFirstOrThrow();
    const events = async () =>
      (await store.db.selectFrom('address_events').select('email').where('delivery_log_id', '=', logId).execute())
        .length;
    const dropTrigger = async () => {
      if (context.dialect === 'sqlite') await sql`drop trigger if exists refuse_events`.execute(store.db);
      else await sql`drop trigger if exists refuse_events on address_events`.execute(store.db);
    };
    await mta.start();
    try {
      await waitFor(
        () => logLines.some((line) => line.includes('address events refused')),
        'the refused write',
        20_000,
      );
      // The invariant: a final outcome is never committed without its address event.
      expect(await row()).toMatchObject({ status: 'sending' });
      expect(await events()).toBe(0);
      await dropTrigger();
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
      await dropTrigger();
      await mta.stop();
    }
  });
});
