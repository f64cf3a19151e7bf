import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { describeEachDialect } from './support/databases.ts';

// A token replayed in a loop (one recipient's pixel fetched 86,000 times in 5 s on loopback wrote
// 86,000 unflagged rows) is answered every time, but its message logs at most its budget.

const browser = 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0';

describeEachDialect('tracking events of one message under replay', (ctx) => {
  it('answers every replay, logs 200 at once then one a second, and leaves other messages alone', async () => {
    const t0 = Date.UTC(2026, 2, 1, 12);
    const clock = manualClock(t0);
    const service = await createTrackingService(
      heraldOver(ctx.store(), { tracking: { baseUrl: 'https://t.herald.test', flushIntervalMs: 10 } }, clock),
    );
    try {
      const seeded = await seedTrackedDelivery(ctx.store(), {
        name: 'replayed',
        html: '<html><body><a href="https://shop.example.com/">Shop</a></body></html>',
        now: t0,
        recipients: [{ email: 'mallory@example.test' }, { email: 'ada@example.test' }],
      });
      const [mallory, ada] = seeded.logs.map((log) => log.id) as [number, number];
      const issuedAt = Math.floor(t0 / 1000);
      const open = (logId: number) =>
        service.app.inject({
          url: `/o/${service.keyRing.sign({ kind: 'open', deliveryId: seeded.deliveryId, logId, issuedAt })}`,
          headers: { 'user-agent': browser },
        });
      const click = (logId: number) =>
        service.app.inject({
          url: `/r/${service.keyRing.sign({ kind: 'click', deliveryId: seeded.deliveryId, logId, linkIndex: 0, occurrence: 0, issuedAt })}`,
          headers: { 'user-agent': browser },
        });
      clock.advance(3_600_000);
      const answers = [];
      for (let i = 0; i < 1_000; i++) answers.push(await open(mallory));
      answers.push(await click(mallory));
      expect(answers.slice(0, -1).every((answer) => answer.statusCode === 200)).toBe(true);
      expect(answers.at(-1)!.statusCode).toBe(302);
      expect((await open(ada)).statusCode).toBe(200);
      clock.advance(10_000);
      for (let i = 0; i < 50; i++) await open(mallory);

      await service.events.flush();
      const logged = await ctx
        .store()
        .db.selectFrom('tracking_events')
        .select(['log_id', (eb) => eb.fn.countAll<number>().as('n')])
        .where('delivery_id', '=', seeded.deliveryId)
        .groupBy('log_id')
        .orderBy('log_id')
        .execute();
      expect(logged.map((row) => [Number(row.log_id), Number(row.n)])).toEqual([
        [mallory, 200 + 10],
        [ada, 1],
      ]);
      expect(service.events.stats().overBudget).toBe(1_001 + 50 - 210);
    } finally {
      await service.close();
    }
  });
});
