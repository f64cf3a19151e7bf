import { expect, it } from 'vitest';
import { consolidatePending } from '../src/tracking/consolidation-run.ts';
import { deliveryTrackingStats } from '../src/tracking/stats.ts';
import { seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { insertTrackingEvents } from '../src/tracking/tracking-store.ts';
import { purgeDeliveryLogsWindow } from '../src/workflows/builtins/cleanup-store.ts';
import { describeEachDialect } from './support/databases.ts';

// Delivery logs are purged after workflows.cleanup.deliveryLogsDays (180), tracked links keep
// working for tracking.tokenTtlDays (365). One click in between recomputed the delivery from
// events whose recipients were gone: its kept indicators became sent 0, every domain "(purged)".

const day = 86_400_000;

describeEachDialect('tracking indicators of a delivery whose logs were purged', (context) => {
  it('keeps its consolidated indicators when a late click comes in', async () => {
    const store = context.store();
    const t0 = Date.UTC(2026, 0, 1, 12);
    const seeded = await seedTrackedDelivery(store, {
      name: 'purged',
      html: '<html><body><a href="https://shop.example.com/">Shop</a></body></html>',
      now: t0,
      recipients: [
        { email: 'ada@one.example.test' },
        { email: 'alan@two.example.test' },
        { email: 'eve@two.example.test' },
      ],
    });
    const event = (logIndex: number, kind: 'open' | 'click', at: number) => ({
      deliveryId: seeded.deliveryId,
      logId: seeded.logs[logIndex]!.id,
      kind,
      linkIndex: kind === 'click' ? 0 : null,
      at,
      flags: 0,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
    });
    await insertTrackingEvents(store, [
      event(0, 'open', t0 + day),
      event(1, 'open', t0 + day),
      event(1, 'click', t0 + day),
    ]);
    await consolidatePending(store, 60_000, t0 + day);
    const before = await deliveryTrackingStats(store, seeded.deliveryId);
    expect(before.all).toMatchObject({ sent: 3, uniqueOpens: 2, uniqueClickers: 1 });
    expect(before.domains.map((domain) => [domain.domain, domain.sent, domain.openers])).toEqual([
      ['one.example.test', 1, 1],
      ['two.example.test', 2, 1],
    ]);

    // The cleanup workflow's purge, 200 days on.
    await store.db.updateTable('deliveries').set({ state: 'finished' }).where('id', '=', seeded.deliveryId).execute();
    expect(await purgeDeliveryLogsWindow(store, 0, Number.MAX_SAFE_INTEGER, t0 + 200 * day)).toBe(3);
    await insertTrackingEvents(store, [event(2, 'click', t0 + 200 * day)]);
    const run = await consolidatePending(store, 60_000, t0 + 200 * day);
    expect(run.deliveries).toEqual([seeded.deliveryId]);

    const after = await deliveryTrackingStats(store, seeded.deliveryId);
    expect(after.all).toEqual(before.all);
    expect(after.human).toEqual(before.human);
    expect(after.domains).toEqual(before.domains);
    expect(after.links).toEqual(before.links);
  });
});
