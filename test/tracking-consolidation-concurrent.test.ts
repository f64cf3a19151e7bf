import { expect, it } from 'vitest';
import { consolidateDelivery } from '../src/tracking/consolidation-run.ts';
import { deliveryTrackingStats } from '../src/tracking/stats.ts';
import { seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { insertTrackingEvents } from '../src/tracking/tracking-store.ts';
import { describeEachDialect } from './support/databases.ts';

// The hourly run, `herald delivery stats --refresh` and the dashboard may recompute one delivery at
// the same time. On PostgreSQL, 59 of 80 such recomputations (4 at once, 20 rounds) failed with
// `duplicate key value violates unique constraint "tracking_indicators_pk"`.

describeEachDialect('tracking consolidation of one delivery, several at once', (context) => {
  it('every recomputation succeeds and the rows are those of one', async () => {
    const store = context.store();
    const now = Date.UTC(2026, 2, 1, 12);
    const seeded = await seedTrackedDelivery(store, {
      name: 'concurrent',
      html: '<html><body><a href="https://a.example/">A</a><a href="https://b.example/">B</a></body></html>',
      now,
      recipients: Array.from({ length: 30 }, (_, i) => ({ email: `u${i}@d${i % 5}.example.test` })),
    });
    await insertTrackingEvents(
      store,
      seeded.logs.flatMap((log, i) => [
        {
          deliveryId: seeded.deliveryId,
          logId: log.id,
          kind: 'open' as const,
          linkIndex: null,
          at: now,
          flags: 0,
          userAgent: null,
        },
        {
          deliveryId: seeded.deliveryId,
          logId: log.id,
          kind: 'click' as const,
          linkIndex: i % 2,
          at: now,
          flags: 0,
          userAgent: null,
        },
      ]),
    );
    const failures: string[] = [];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => consolidateDelivery(store, seeded.deliveryId, 60_000, now)),
      );
      for (const result of results) if (result.status === 'rejected') failures.push(String(result.reason));
    }
    expect(failures).toEqual([]);
    const stats = await deliveryTrackingStats(store, seeded.deliveryId);
    expect(stats.all).toMatchObject({ sent: 30, uniqueOpens: 30, uniqueClickers: 30, totalClicks: 30 });
    expect(stats.links.map((link) => [link.index, link.clicks])).toEqual([
      [0, 15],
      [1, 15],
    ]);
    expect(stats.domains).toHaveLength(5);
  });
});
