import { afterAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getAddress } from '../src/quarantine/quarantine-store.ts';
import { createTrackingService, type TrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { describeEachDialect } from './support/databases.ts';

// A one-click unsubscribe's raw event used to go through the in-memory event buffer after the
// address was denylisted: a buffer full of opens (a flood) dropped it, a crash before the flush lost
// it, and the sender's retry changed nothing (already applied), so the opt-out was never counted.

describeEachDialect('one-click unsubscribe and its raw event', (ctx) => {
  const t0 = Date.UTC(2026, 2, 1, 12);
  const clock = manualClock(t0);
  let service: TrackingService;
  afterAll(async () => {
    await service?.close();
  });

  it('is written with the denylisting, even while the event buffer is full; a replay writes nothing', async () => {
    // Nothing is flushed during the test: the buffer fills and stays full.
    service = await createTrackingService(
      heraldOver(
        ctx.store(),
        {
          tracking: {
            baseUrl: 'https://t.herald.test',
            maxBufferedEvents: 100,
            flushBatchSize: 5_000,
            flushIntervalMs: 3_600_000,
          },
        },
        clock,
      ),
    );
    const seeded = await seedTrackedDelivery(ctx.store(), {
      name: 'unsubscribe-event',
      html: '<html><body><a href="https://shop.example.com/">Shop</a></body></html>',
      now: t0,
      recipients: [{ email: 'ann@example.test' }],
    });
    const ann = seeded.logs[0]!;
    const sign = (kind: 'open' | 'unsubscribe') =>
      service.keyRing.sign({ kind, deliveryId: seeded.deliveryId, logId: ann.id, issuedAt: Math.floor(t0 / 1000) });
    for (let i = 0; i < 150; i++) await service.app.inject({ url: `/o/${sign('open')}` });
    expect(service.events.stats()).toMatchObject({ buffered: 100, dropped: 50 });
    const unsubscribeEvents = () =>
      ctx
        .store()
        .db.selectFrom('tracking_events')
        .select(['kind', 'log_id'])
        .where('kind', '=', 'unsubscribe')
        .execute();
    for (let attempt = 0; attempt < 2; attempt++) {
      const response = await service.app.inject({
        method: 'POST',
        url: `/u/${sign('unsubscribe')}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      expect(response.statusCode).toBe(200);
      expect(await getAddress(ctx.store(), ann.email)).toMatchObject({ state: 'denylisted', reason: 'unsubscribe' });
      expect(await unsubscribeEvents()).toEqual([{ kind: 'unsubscribe', log_id: ann.id }]);
    }
    await service.events.flush();
    expect(await unsubscribeEvents()).toHaveLength(1);
  });
});
