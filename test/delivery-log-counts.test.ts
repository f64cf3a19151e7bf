import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../src/common/logger.ts';
import { composeMta } from '../src/compose-mta.ts';
import { parseConfig } from '../src/config/load.ts';
import { countDeliveryLogs } from '../src/delivery/delivery-store.ts';
import { foldDeliveryLogCounts } from '../src/delivery/log-counts-store.ts';
import {
  countLogsByDomain,
  failureBreakdown,
  lastOutcomeAt,
  throughputByMinute,
} from '../src/delivery/progress-store.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import type { Store } from '../src/store/database.ts';
import { deleteDeliveryLogsBatch, deleteDeliveryRow } from '../src/workflows/builtins/cleanup-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { holdTransaction } from './support/held-transaction.ts';
import { waitFor } from './support/wait.ts';

// The delivery summary, the delivery page's live tick, the doctor and the ETA read counts kept by
// triggers (migrations 0028, 0029, 0033) instead of counting logs. After each kind of write —
// preparation's inserts, the MTA's claims and outcomes (sent, hard failure, soft failure retried), a
// bounce after a 250, deletions in batches, the delivery deleted — the kept counts, the throughput
// per minute, the failure groups and the counts by domain equal what a pass over the logs themselves
// gives, on both dialects.

async function countedOverLogs(store: Store, deliveryId: number) {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['status', 'failure_reason', 'attempts'])
    .where('delivery_id', '=', deliveryId)
    .execute();
  const byStatus: Record<string, number> = { pending: 0, sending: 0, sent: 0, failed: 0, ignored: 0, cancelled: 0 };
  const byReason: Record<string, number> = {};
  const retryingByReason: Record<string, number> = {};
  let retried = 0;
  for (const row of rows) {
    byStatus[row.status === 'sending' ? 'pending' : row.status]! += 1;
    if (Number(row.attempts) > 1) retried += 1;
    if (row.failure_reason && row.status === 'failed')
      byReason[row.failure_reason] = (byReason[row.failure_reason] ?? 0) + 1;
    if (row.failure_reason && (row.status === 'pending' || row.status === 'sending'))
      retryingByReason[row.failure_reason] = (retryingByReason[row.failure_reason] ?? 0) + 1;
  }
  return { byStatus, byReason, retryingByReason, retried, total: rows.length };
}

/** Per minute: logs sent (by sent_at), failed and still deferred after an attempt (by updated_at). */
async function throughputOverLogs(store: Store, deliveryId: number) {
  const rows = await store.db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).execute();
  const byMinute = new Map<number, { minute: number; sent: number; failed: number; deferred: number }>();
  const add = (at: number, outcome: 'sent' | 'failed' | 'deferred') => {
    const minute = Math.floor(at / 60_000) * 60_000;
    const entry = byMinute.get(minute) ?? { minute, sent: 0, failed: 0, deferred: 0 };
    entry[outcome] += 1;
    byMinute.set(minute, entry);
  };
  for (const row of rows) {
    if (row.status === 'sent') add(Number(row.sent_at ?? row.updated_at), 'sent');
    else if (row.status === 'failed') add(Number(row.updated_at), 'failed');
    else if ((row.status === 'pending' || row.status === 'sending') && Number(row.attempts) > 0)
      add(Number(row.updated_at), 'deferred');
  }
  return [...byMinute.values()].sort((a, b) => a.minute - b.minute);
}

/** Failed logs grouped three ways, every group (the kept breakdown's top 20 holds them all here). */
async function failuresOverLogs(store: Store, deliveryId: number) {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .where('status', '=', 'failed')
    .execute();
  const tally = (keyOf: (row: (typeof rows)[number]) => string) => {
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(keyOf(row), (counts.get(keyOf(row)) ?? 0) + 1);
    return Object.fromEntries(counts);
  };
  return {
    byReason: tally((r) => `${r.failure_type}/${r.failure_reason}/${r.failure_category}`),
    byDomain: tally((r) => r.domain),
    byMxHost: tally((r) => String(r.mx_host)),
  };
}

/** Logs by domain, outcome (pending never tried, deferred after an attempt, sent, failed) and MX host. */
async function domainsOverLogs(store: Store, deliveryId: number) {
  const rows = await store.db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).execute();
  const counts = new Map<string, number>();
  for (const row of rows) {
    const active = row.status === 'pending' || row.status === 'sending';
    if (!active && row.status !== 'sent' && row.status !== 'failed') continue;
    const outcome = active ? (Number(row.attempts) > 0 ? 'deferred' : 'pending') : row.status;
    const key = `${row.domain}/${outcome}/${row.mx_host}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries(counts);
}

async function keptDomains(store: Store, deliveryId: number) {
  const kept = await countLogsByDomain(store, deliveryId);
  return Object.fromEntries(kept.map((c) => [`${c.domain}/${c.outcome}/${c.mxHost}`, c.count]));
}

async function keptFailures(store: Store, deliveryId: number) {
  const kept = await failureBreakdown(store, deliveryId, 20);
  const asRecord = (groups: typeof kept.byReason, keyOf: (key: Record<string, string | null>) => string) =>
    Object.fromEntries(groups.map((g) => [keyOf(g.key), g.count]));
  return {
    byReason: asRecord(kept.byReason, (k) => `${k.type}/${k.reason}/${k.category}`),
    byDomain: asRecord(kept.byDomain, (k) => String(k.domain)),
    byMxHost: asRecord(kept.byMxHost, (k) => String(k.mxHost)),
  };
}

let simulator: Simulator;
let fastRules: string;
beforeAll(async () => {
  simulator = await startSimulator();
  fastRules = join(mkdtempSync(join(tmpdir(), 'herald-counts-')), 'mx-rules.yaml');
  writeFileSync(
    fastRules,
    'rules:\n  - name: generic\n    mask: "*"\n    maxConnections: 4\n    maxMessagesPerHour: 100000000\n    maxMessagesPerConnection: 50\n',
  );
});
afterAll(async () => {
  await simulator.close();
});

describeEachDialect('delivery log counts', (context) => {
  let herald: Herald;
  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig(
        {
          database: { url: context.url() },
          mta: {
            routes: simulator.routes,
            resolverServers: [simulator.dnsServer],
            pollIntervalMs: 50,
            bounceDomain: 'bounces.brand.test',
          },
          // The shipped generic rule paces a small domain at 3,000 an hour: 25 s for this test's 30 messages.
          shaping: { rulesFiles: [fastRules] },
        },
        'test',
      ),
      logger: silentLogger,
    });
  });
  afterAll(async () => {
    await herald?.close();
  });

  it('stay equal to a count over the logs through preparation, sending, bounces and deletions', async () => {
    const recipients = [
      ...Array.from({ length: 30 }, (_, i) => ({
        email: `ok${i}.${context.dialect}@accept.test`,
        data: { first_name: 'A' },
      })),
      ...Array.from({ length: 5 }, (_, i) => ({
        email: `unknown${i}.${context.dialect}@unknown-users.test`,
        data: { first_name: 'B' },
      })),
      ...Array.from({ length: 4 }, (_, i) => ({
        email: `full${i}.${context.dialect}@full.test`,
        data: { first_name: 'C' },
      })),
    ];
    const { deliveryId, logIds } = await seedDelivery(herald.store.db, { now: Date.now(), recipients });
    const check = async (what: string) => {
      const kept = await countDeliveryLogs(herald.store, deliveryId);
      const counted = await countedOverLogs(herald.store, deliveryId);
      expect(
        { ...kept, byStatus: { ...kept.byStatus, pending: kept.byStatus.pending + kept.byStatus.sending, sending: 0 } },
        what,
      ).toEqual(counted);
      const minutes = await throughputOverLogs(herald.store, deliveryId);
      expect(await throughputByMinute(herald.store, deliveryId), `${what}: throughput`).toEqual(minutes);
      const now = Date.now();
      const lastMinute = minutes.at(-1)?.minute;
      expect(await lastOutcomeAt(herald.store, deliveryId, now), `${what}: last outcome`).toBe(
        lastMinute === undefined ? null : Math.min(now, lastMinute + 60_000),
      );
      expect(await keptFailures(herald.store, deliveryId), `${what}: failures`).toEqual(
        await failuresOverLogs(herald.store, deliveryId),
      );
      expect(await keptDomains(herald.store, deliveryId), `${what}: by domain`).toEqual(
        await domainsOverLogs(herald.store, deliveryId),
      );
      return kept;
    };
    expect((await check('after preparation')).byStatus.pending).toBe(recipients.length);

    const mta = await composeMta(herald);
    await mta.start();
    try {
      let counts: Awaited<ReturnType<typeof countedOverLogs>> | undefined;
      await waitFor(async () => {
        counts = await countedOverLogs(herald.store, deliveryId);
        return (
          counts.byStatus.sent === 30 && counts.byStatus.failed === 5 && counts.retryingByReason.mailbox_full === 4
        );
      }, 'sent, hard failures and soft failures waiting for their retry').catch((error: Error) => {
        throw new Error(`${error.message}; counts ${JSON.stringify(counts)}`);
      });
    } finally {
      await mta.stop();
    }
    const afterSending = await check('after sending');
    expect(afterSending).toMatchObject({ byReason: { user_unknown: 5 }, retryingByReason: { mailbox_full: 4 } });

    // A bounce after a 250 (one statement over several rows), then a retry counted as retried.
    await herald.store.db
      .updateTable('delivery_logs')
      .set({ status: 'failed', failure_type: 'hard', failure_reason: 'user_unknown', updated_at: Date.now() })
      .where('id', 'in', logIds.slice(0, 3))
      .execute();
    await herald.store.db.updateTable('delivery_logs').set({ attempts: 3 }).where('id', '=', logIds[3]!).execute();
    expect((await check('after bounces')).byReason.user_unknown).toBe(8);

    // Folding (PostgreSQL appends deltas) leaves one row per key and the same counts.
    const keys = async () =>
      (
        await herald.store.db
          .selectFrom('delivery_log_counts')
          .select(['status', 'failure_reason', 'retried'])
          .where('delivery_id', '=', deliveryId)
          .execute()
      ).map((row) => `${row.status}/${row.failure_reason}/${row.retried}`);
    const folded = await foldDeliveryLogCounts(herald.store, 0);
    expect(folded).toBe(context.dialect === 'postgres' ? 4 : 0); // this delivery, in each of the 4 counters
    expect(new Set(await keys()).size).toBe((await keys()).length);
    await check('after folding');

    expect(await deleteDeliveryLogsBatch(herald.store, deliveryId, 10)).toBe(10);
    expect((await check('after a deletion batch')).total).toBe(recipients.length - 10);

    await herald.store.db.updateTable('deliveries').set({ state: 'deleted' }).where('id', '=', deliveryId).execute();
    await deleteDeliveryRow(herald.store, deliveryId);
    for (const table of [
      'delivery_log_counts',
      'delivery_minute_counts',
      'delivery_failure_counts',
      'delivery_domain_counts',
    ] as const)
      expect(
        await herald.store.db.selectFrom(table).selectAll().where('delivery_id', '=', deliveryId).execute(),
        table,
      ).toEqual([]);
  });
});

describeEachDialect('delivery log counts under concurrent writers', (context) => {
  it.skipIf(context.dialect !== 'postgres')(
    'let two transactions change logs of one delivery without waiting for each other (PostgreSQL)',
    async () => {
      const store = context.store();
      const { deliveryId, logIds } = await seedDelivery(store.db, {
        now: Date.now(),
        recipients: [{ email: 'first@accept.test' }, { email: 'second@accept.test' }],
      });
      const first = await holdTransaction(store, async (trx) => {
        await sql`update delivery_logs set status = 'sent', attempts = 1 where id = ${logIds[0]!}`.execute(trx);
      });
      try {
        // Waiting for the first transaction's locks would fail here after 5 s instead of hanging.
        await store.db.transaction().execute(async (trx) => {
          await sql`set local lock_timeout = '5s'`.execute(trx);
          await sql`update delivery_logs set status = 'failed', attempts = 1 where id = ${logIds[1]!}`.execute(trx);
        });
      } finally {
        await first.commit();
      }
      const counts = await countDeliveryLogs(store, deliveryId);
      expect(counts.byStatus).toMatchObject({ pending: 0, sent: 1, failed: 1 });
    },
  );

  it.skipIf(context.dialect !== 'postgres')(
    'are folded by a sending MTA once a delivery crowds a counter, and left alone below that (PostgreSQL)',
    async () => {
      const store = context.store();
      const seed = async () =>
        (await seedDelivery(store.db, { now: Date.now(), recipients: [{ email: 'one@crowded.test' }] })).deliveryId;
      const crowded = await seed();
      const quiet = await seed();
      // Delta rows as many outcome statements over many domains leave them: +1, -1, +1, … per key.
      const deltas = (deliveryId: number, rows: number) =>
        sql`insert into delivery_domain_counts (delivery_id, domain, outcome, mx_host, n)
            select ${deliveryId}, 'd' || (i % 7) || '.test', 'sent', 'mx.test', case when i % 3 = 2 then -1 else 1 end
            from generate_series(1, ${rows}) as i`.execute(store.db);
      await deltas(crowded, 2_100);
      await deltas(quiet, 300);
      const rowsOf = async (deliveryId: number) =>
        (
          await store.db
            .selectFrom('delivery_domain_counts')
            .selectAll()
            .where('delivery_id', '=', deliveryId)
            .execute()
        ).length;
      const before = await countLogsByDomain(store, crowded);

      expect(await createMtaStore(store).foldLogCounts()).toBeGreaterThanOrEqual(1);
      expect(await countLogsByDomain(store, crowded)).toEqual(before);
      expect(await rowsOf(crowded)).toBe(before.length); // the seeded pending key and the 7 sent keys
      expect(await rowsOf(quiet)).toBe(300 + 1);
    },
  );
});
