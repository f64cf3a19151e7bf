import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { countDeliveryLogs } from '../src/delivery/delivery-store.ts';
import { startDelivery, stopDelivery } from '../src/delivery/lifecycle.ts';
import { releasedOutcome } from '../src/mta/attempt-policy.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import type { Store } from '../src/store/database.ts';
import { describeEachDialect } from './support/databases.ts';
import { preparedOnStore, runWorkflowOnce } from './support/fixtures.ts';

// `herald delivery stop` while an MTA holds some of the delivery's messages (claimed, waiting on a
// throttled path): the MTA hands them back to pending after the stop cancelled the pending ones.

async function statuses(store: Store, deliveryId: number): Promise<Record<string, number>> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['status', (eb) => eb.fn.countAll<string | number>().as('n')])
    .where('delivery_id', '=', deliveryId)
    .groupBy('status')
    .execute();
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

describeEachDialect('stop with messages in flight', (context) => {
  it('the messages an MTA hands back after the stop end cancelled, not pending forever', async () => {
    const store = context.store();
    const clock = manualClock();
    const id = await preparedOnStore(store, clock, 'in-flight', 5);
    await startDelivery(store, id, clock.now());
    const mta = createMtaStore(store);
    const claimed = await mta.claimDue('node-a', clock.now(), 2, 60_000);
    expect(claimed).toHaveLength(2);

    await stopDelivery(store, id, clock.now());
    expect(await statuses(store, id)).toEqual({ cancelled: 3, sending: 2 });
    // The MTA finds the delivery stopped and hands its claims back, untried.
    await mta.recordOutcomes(
      'node-a',
      claimed.map((log) => releasedOutcome({ log, validUntil: null, at: clock.now() })),
    );

    clock.advance(5 * 60_000);
    expect((await runWorkflowOnce(store, clock, 'delivery-manager')).status).toBe('succeeded');
    expect(await statuses(store, id)).toEqual({ cancelled: 5 });
    expect((await countDeliveryLogs(store, id)).byStatus).toMatchObject({ cancelled: 5, sending: 0, pending: 0 });
  });
});
