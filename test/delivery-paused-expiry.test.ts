import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { pauseDelivery, startDelivery } from '../src/delivery/lifecycle.ts';
import { describeEachDialect } from './support/databases.ts';
import { preparedOnStore, runWorkflowOnce } from './support/fixtures.ts';

const hour = 3_600_000;

// A delivery paused when its validity ends can never send again (every message would fail as
// expired): the cleanup workflow ends it as it ends one still in progress.

describeEachDialect('validity ending while paused', (context) => {
  it('the cleanup finishes a paused delivery past its validity and cancels its pending logs as expired', async () => {
    const store = context.store();
    const clock = manualClock();
    const id = await preparedOnStore(store, clock, 'paused', 4, { validityHours: 1 });
    await startDelivery(store, id, clock.now());
    await pauseDelivery(store, id, clock.now());
    clock.advance(2 * hour);

    expect((await runWorkflowOnce(store, clock, 'cleanup')).status).toBe('succeeded');
    expect(await getDelivery(store, id)).toMatchObject({ state: 'finished', finished_at: clock.now() });
    const logs = await store.db
      .selectFrom('delivery_logs')
      .select(['status', 'failure_reason'])
      .where('delivery_id', '=', id)
      .execute();
    expect(logs).toEqual(Array.from({ length: 4 }, () => ({ status: 'cancelled', failure_reason: 'expired' })));
  });
});
