import { expect, it } from 'vitest';
import { systemClock } from '../src/common/clock.ts';
import { createTrackingService, type TrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery, type SeededDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { describeEachDialect } from './support/databases.ts';

// One-click unsubscribes are never lost: while opens are flooded in (on SQLite their batches are
// written by the event writer's thread, a second connection), every unsubscribe POST is answered
// 200 and applied; replayed POSTs add no rows.

const recipients = 300;
const openRounds = 12;

describeEachDialect('one-click unsubscribes under open-tracking load', (ctx) => {
  let service: TrackingService;
  let seeded: SeededDelivery;

  it('0 errors while opens flood in; each unsubscribe applied once, replays grow nothing', async () => {
    service = await createTrackingService(
      heraldOver(
        ctx.store(),
        { tracking: { baseUrl: 'https://t.herald.test', flushIntervalMs: 10, flushBatchSize: 50 } },
        systemClock,
      ),
    );
    try {
      const now = Date.now();
      seeded = await seedTrackedDelivery(ctx.store(), {
        name: 'load',
        html: '<html><body><p>Hi</p><a href="https://shop.example.com/">Shop</a></body></html>',
        now,
        recipients: Array.from({ length: recipients }, (_, i) => ({ email: `u${i}@example.test` })),
      });
      const issuedAt = Math.floor(now / 1000);
      const sign = (kind: 'open' | 'unsubscribe', logId: number) =>
        service.keyRing.sign({ kind, deliveryId: seeded.deliveryId, logId, issuedAt });
      const post = (logId: number) =>
        service.app.inject({
          method: 'POST',
          url: `/u/${sign('unsubscribe', logId)}`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'List-Unsubscribe=One-Click',
        });

      // Opens keep the event writer committing while the unsubscribes read, decide and write.
      const flood = (async () => {
        let opens = 0;
        for (let round = 0; round < openRounds; round++) {
          const answers = await Promise.all(
            seeded.logs.map((log) => service.app.inject({ url: `/o/${sign('open', log.id)}` })),
          );
          opens += answers.filter((answer) => answer.statusCode === 200).length;
        }
        return opens;
      })();
      const statuses: number[] = [];
      for (let i = 0; i < seeded.logs.length; i += 10) {
        const answers = await Promise.all(seeded.logs.slice(i, i + 10).map((log) => post(log.id)));
        statuses.push(...answers.map((answer) => answer.statusCode));
      }
      expect(await flood).toBe(openRounds * recipients);
      const errors = statuses.filter((status) => status !== 200);
      expect(errors, `non-200 answers: ${errors.join(',')}`).toEqual([]);

      const count = async (table: 'address_events' | 'tracking_events') => {
        await service.events.flush();
        const db = ctx.store().db;
        const row =
          table === 'address_events'
            ? await db
                .selectFrom('address_events')
                .where('source', '=', 'unsubscribe')
                .select((eb) => eb.fn.countAll<number>().as('n'))
                .executeTakeFirstOrThrow()
            : await db
                .selectFrom('tracking_events')
                .where('kind', '=', 'unsubscribe')
                .select((eb) => eb.fn.countAll<number>().as('n'))
                .executeTakeFirstOrThrow();
        return Number(row.n);
      };
      const denylisted = await ctx
        .store()
        .db.selectFrom('addresses')
        .where('state', '=', 'denylisted')
        .where('email', 'like', 'u%@example.test')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(denylisted.n)).toBe(recipients);
      expect(await count('address_events')).toBe(recipients);
      expect(await count('tracking_events')).toBe(recipients);

      // A receiver (or an attacker) replaying the POSTs: answered, but no table grows.
      for (const log of seeded.logs.slice(0, 50)) expect((await post(log.id)).statusCode).toBe(200);
      expect(await count('address_events')).toBe(recipients);
      expect(await count('tracking_events')).toBe(recipients);
    } finally {
      await service.close();
    }
  });
});
