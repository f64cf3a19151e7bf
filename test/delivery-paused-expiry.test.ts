import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { createDelivery, getDelivery } from '../src/delivery/delivery-store.ts';
import { pauseDelivery, startDelivery } from '../src/delivery/lifecycle.ts';
import { preparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition, insertList } from './support/fixtures.ts';

const hour = 3_600_000;

// A delivery paused when its validity ends can never send again (every message would fail as
// expired): the cleanup workflow ends it as it ends one still in progress.

describeEachDialect('validity ending while paused', (context) => {
  it('the cleanup finishes a paused delivery past its validity and cancels its pending logs as expired', async () => {
    const store = context.store();
    const clock = manualClock();
    await insertList(
      store,
      'paused',
      Array.from({ length: 4 }, (_, i) => ({ email: `r${i}@accept.test` })),
    );
    const { id } = await createDelivery(
      store,
      deliveryDefinition({ listName: 'paused', validityHours: 1 }),
      { validityHours: 24 },
      clock.now(),
    );
    await prepareDelivery(preparationStore(store), id, { batchSize: 10, clock, isValidAddress: () => true });
    await startDelivery(store, id, clock.now());
    await pauseDelivery(store, id, clock.now());
    clock.advance(2 * hour);

    const engine = createWorkflowEngine({
      store,
      config: parseConfig({}, 'test'),
      clock,
      logger: silentLogger,
      nodeId: 'node-a',
      ticker: manualTicker,
    });
    expect((await engine.runNow('cleanup')).status).toBe('succeeded');
    expect(await getDelivery(store, id)).toMatchObject({ state: 'finished', finished_at: clock.now() });
    const logs = await store.db
      .selectFrom('delivery_logs')
      .select(['status', 'failure_reason'])
      .where('delivery_id', '=', id)
      .execute();
    expect(logs).toEqual(Array.from({ length: 4 }, () => ({ status: 'cancelled', failure_reason: 'expired' })));
  });
});
