import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClassifierSource } from '../src/bounce/qualification-classifier.ts';
import { createQualificationRecorder } from '../src/bounce/qualification-recorder.ts';
import { manualClock } from '../src/common/clock.ts';
import { configSchema } from '../src/config/schema.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createReplyClassifier } from '../src/bounce/reply-classifier.ts';
import { createMtaQualification } from '../src/quarantine/mta-hooks.ts';
import { DEFAULT_QUARANTINE_SETTINGS } from '../src/quarantine/types.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { addressTimeline, getAddress } from '../src/quarantine/quarantine-store.ts';
import { describeEachDialect } from './support/databases.ts';

const hour = 3_600_000;
let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({});
});
afterAll(async () => {
  await simulator.close();
});

describeEachDialect('retries and quarantine from MTA outcomes (default schedule, injected clock)', (context) => {
  it('mailbox full: 5 retries an hour apart, then daily until the 5-day validity; quarantined on the 5th day; user unknown stops at once', async () => {
    const store = context.store();
    const defaults = configSchema.parse({});
    expect(defaults.mta.retryDelaysSeconds).toEqual([3600, 3600, 3600, 3600, 3600, 86400]);
    expect(defaults.delivery.validityHours).toBe(120);
    const config = configSchema.parse({
      mta: {
        routes: simulator.routes,
        resolverServers: [simulator.dnsServer],
        connectTimeoutMs: 1_000,
        commandTimeoutMs: 1_000,
        dataTimeoutMs: 1_000,
        pollIntervalMs: 50,
      },
    }).mta;
    const clock = manualClock(Date.UTC(2026, 2, 1, 0, 0));
    const t0 = clock.now();
    const full = `full1.${context.dialect}@full.test`;
    const unknown = `unknown1.${context.dialect}@unknown-users.test`;
    const ok = `ann.${context.dialect}@accept.test`;
    const { deliveryId, logIds } = await seedDelivery(store.db, {
      now: t0,
      recipients: [full, unknown, ok].map((email) => ({ email, data: { first_name: 'Pat' } })),
      validUntil: t0 + 120 * hour,
    });

    const classifiers = await createClassifierSource({
      siteRulesFile: join(mkdtempSync(join(tmpdir(), 'herald-site-')), 'bounce.yaml'),
      checkMs: 0,
    });
    const recorder = createQualificationRecorder({ store, now: clock.now, flushMs: 60_000 });
    const classify = createReplyClassifier(() => classifiers.current());
    const hooks = createMtaQualification({
      recorder,
      settings: DEFAULT_QUARANTINE_SETTINGS,
      clock,
    });
    const mta = createMta({
      store: createMtaStore(store),
      nodeId: `retries-${context.dialect}`,
      config,
      clock,
      classify,
      outcomeEffects: hooks.applyWithin,
      onOutcomes: hooks.onOutcomes,
    });
    await mta.start();
    try {
      const attemptsAt: number[] = [];
      for (let round = 0; round < 20; round++) {
        await mta.drain();
        await hooks.flush();
        const row = await store.db
          .selectFrom('delivery_logs')
          .selectAll()
          .where('id', '=', logIds[0]!)
          .executeTakeFirstOrThrow();
        attemptsAt.push((clock.now() - t0) / hour);
        if (row.status !== 'pending') break;
        clock.set(Number(row.next_attempt_at));
      }
      expect(attemptsAt).toEqual([0, 1, 2, 3, 4, 5, 29, 53, 77, 101]);
      const logs = new Map(
        (await store.db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).execute()).map(
          (row) => [row.email, row],
        ),
      );
      // The retry after 101 h would start at 125 h, past the 120 h validity: expired now.
      expect(logs.get(full)).toMatchObject({
        status: 'failed',
        attempts: 10,
        failure_type: 'soft',
        failure_reason: 'expired',
        failure_category: 'mailboxfull',
        last_reply_code: 452,
      });
      expect(logs.get(unknown)).toMatchObject({
        status: 'failed',
        attempts: 1,
        failure_type: 'hard',
        failure_reason: 'user_unknown',
      });
      expect(logs.get(ok)).toMatchObject({ status: 'sent' });

      // Soft errors counted once per UTC day: days 0..4 → 5 → quarantined on the last attempt.
      expect(await getAddress(store, full)).toMatchObject({
        state: 'quarantined',
        errorCount: 5,
        reason: 'mailbox_full',
      });
      const timeline = await addressTimeline(store, full);
      expect(timeline).toHaveLength(10);
      expect(timeline.filter((e) => e.counted === 1).map((e) => (e.at - t0) / hour)).toEqual([0, 29, 53, 77, 101]);
      expect(timeline[0]).toMatchObject({
        source: 'smtp',
        delivery_id: deliveryId,
        delivery_log_id: logIds[0],
        category: 'mailboxfull',
        type: 'soft',
        state_after: 'with_errors',
      });
      expect(timeline[0]!.rule_id).toEqual(expect.any(String));
      expect(timeline[0]!.pack_version).toBe(classifiers.current().version);
      expect(timeline[0]!.reply_text).toContain('452 4.2.2');
      expect(timeline.at(-1)).toMatchObject({ state_before: 'with_errors', state_after: 'quarantined' });

      expect(await getAddress(store, unknown)).toMatchObject({ state: 'quarantined', reason: 'user_unknown' });
      expect(await getAddress(store, ok)).toBeUndefined();
    } finally {
      await mta.stop();
      await hooks.flush();
      await recorder.close();
      classifiers.close();
    }
  });
});
