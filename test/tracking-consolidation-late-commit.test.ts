import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { consolidatePending } from '../src/tracking/consolidation-run.ts';
import { deliveryTrackingStats } from '../src/tracking/stats.ts';
import { seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { insertTrackingEvents, insertTrackingEventsWithin } from '../src/tracking/tracking-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { holdTransaction } from './support/held-transaction.ts';
import { waitFor } from './support/wait.ts';

// PostgreSQL hands out event ids before commit: one tracking node's batch (a smaller id) may commit
// after another's. The consolidation watermark moved past the late batch's ids while it was still
// uncommitted, so no run ever counted it: delivery A kept 0 opens with its open in the raw log.

describeEachDialect('tracking consolidation and late-committing event batches', (context) => {
  it.skipIf(context.dialect !== 'postgres')(
    'counts an event batch that commits after a later one (PostgreSQL)',
    async () => {
      const store = context.store();
      const now = Date.UTC(2026, 2, 1, 12);
      const seed = (name: string) =>
        seedTrackedDelivery(store, {
          name,
          html: '<html><body><a href="https://shop.example.com/">Shop</a></body></html>',
          now,
          recipients: [{ email: `${name}@example.test` }],
        });
      const [a, b] = [await seed('late'), await seed('early')];
      const open = (seeded: typeof a) => ({
        deliveryId: seeded.deliveryId,
        logId: seeded.logs[0]!.id,
        kind: 'open' as const,
        linkIndex: null,
        at: now,
        flags: 0,
        userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
      });
      // Node 1's batch takes its id first and stays open; node 2's batch commits meanwhile.
      const late = await holdTransaction(store, (trx) => insertTrackingEventsWithin({ ...store, db: trx }, [open(a)]));
      await insertTrackingEvents(store, [open(b)]);

      let settled = false;
      const run = consolidatePending(store, 60_000, now).finally(() => {
        settled = true;
      });
      const waitingForWriters = async () =>
        Number(
          (
            await sql<{
              n: number;
            }>`select count(*) as n from pg_locks where locktype = 'advisory' and not granted`.execute(store.db)
          ).rows[0]!.n,
        ) > 0;
      await waitFor(async () => settled || (await waitingForWriters()), 'the hourly run to finish or to wait');
      await late.commit();
      await run;
      // The next hourly run, after the late batch committed.
      await consolidatePending(store, 60_000, now);

      expect((await deliveryTrackingStats(store, a.deliveryId)).all.uniqueOpens).toBe(1);
      expect((await deliveryTrackingStats(store, b.deliveryId)).all.uniqueOpens).toBe(1);
    },
  );
});
