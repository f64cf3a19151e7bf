import { expect, it } from 'vitest';
import { AppError } from '../src/common/errors.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { DeliveryDefinition } from '../src/delivery/definition.ts';
import { preparationStore, type PreparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import type { Store } from '../src/store/database.ts';
import { createDelivery, getDelivery } from '../src/delivery/delivery-store.ts';
import { countLogs, insertDeliveryLogs } from '../src/delivery/preparation-store.ts';
import { listSteps } from '../src/workflows/workflow-store.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';
import { insertList } from './support/fixtures.ts';

// A delivery whose `herald delivery prepare` process died stays `preparing`; delivery-manager fails it
// once it has made no progress for workflows.stalePreparationMinutes (default 30) and deletes its logs.

const start = Date.parse('2026-07-01T10:00:00Z');
const minute = 60_000;
const isValidAddress = (email: string) => /^[^@\s]+@[^@\s]+\.[a-z]{2,}$/.test(email);

function definition(name: string, listName: string): DeliveryDefinition {
  return {
    name,
    fromAddress: 'news@herald.test',
    fromName: null,
    replyTo: null,
    subject: 'Hello',
    html: null,
    text: 'Hi {{ first_name }}',
    listName,
    validityHours: null,
    affinity: null,
    scheduledAt: null,
  };
}

function recipients(count: number, prefix: string) {
  return Array.from({ length: count }, (_, i) => ({
    email: `${prefix}${i}@accept.test`,
    data: { first_name: `U${i}` },
  }));
}

function runDeliveryManager(store: Store, at: number) {
  const engine = createWorkflowEngine({
    store,
    config: parseConfig({}, 'test'),
    clock: manualClock(at),
    logger: silentLogger,
    nodeId: 'node-a',
    ticker: manualTicker,
  });
  return engine.runNow('delivery-manager');
}

/** What a killed `herald delivery prepare` leaves: the delivery `preparing` since `lastProgressAt`, with part of its logs. */
async function leftPreparing(store: Store, name: string, lastProgressAt: number): Promise<number> {
  const listId = await insertList(store, name, recipients(30, name));
  const delivery = await createDelivery(store, definition(name, name), { validityHours: 24 }, start - 60 * minute);
  await store.db
    .updateTable('deliveries')
    .set({ state: 'preparing', updated_at: lastProgressAt })
    .where('id', '=', delivery.id)
    .execute();
  const recipientIds = await store.db
    .selectFrom('recipients')
    .select('id')
    .where('list_id', '=', listId)
    .orderBy('id')
    .execute();
  // Written as the dead process wrote them (its hold on the delivery died with it).
  await insertDeliveryLogs(
    store,
    delivery.id,
    { listId, afterId: 0, lastId: recipientIds[19]!.id, excludedIds: [] },
    lastProgressAt,
  );
  return delivery.id;
}

describeEachDialect('interrupted preparation', (context) => {
  it('delivery-manager fails a preparation with no progress for 30 minutes and deletes its logs; a recent one is left alone; prepare works again', async () => {
    const store = context.store();
    const stale = await leftPreparing(store, 'stale', start - 31 * minute);
    const recent = await leftPreparing(store, 'recent', start - 29 * minute);
    expect(await countLogs(store, stale)).toBe(20);

    const result = await runDeliveryManager(store, start);
    expect(result.status).toBe('succeeded');
    expect(
      (await listSteps(store, result.runId)).find((step) => step.name === 'fail-stale-preparations'),
    ).toMatchObject({
      summary: '1 preparations failed as interrupted, 20 logs deleted',
    });

    const failed = await getDelivery(store, stale);
    expect(failed.state).toBe('preparation_failed');
    expect(failed.last_error).toBe(
      `interrupted: no progress since ${new Date(start - 31 * minute).toISOString()}; run \`herald delivery prepare ${stale}\` again`,
    );
    expect(failed.updated_at).toBe(start);
    expect(await countLogs(store, stale)).toBe(0);
    expect(await getDelivery(store, recent)).toMatchObject({
      state: 'preparing',
      updated_at: start - 29 * minute,
      last_error: null,
    });
    expect(await countLogs(store, recent)).toBe(20);

    // The operator prepares it again: preparation_failed → preparing → prepared, every recipient once.
    const outcome = await prepareDelivery(preparationStore(store), stale, {
      batchSize: 10,
      clock: manualClock(start + minute),
      isValidAddress,
    });
    expect(outcome).toMatchObject({ kind: 'prepared', counts: { target: 30, prepared: 30 } });
    expect(await getDelivery(store, stale)).toMatchObject({ state: 'prepared', last_error: null });
    expect(await countLogs(store, stale)).toBe(30);

    // Two minutes later the recent one has been silent for 31 minutes too; the re-prepared one is left alone.
    const again = await runDeliveryManager(store, start + 2 * minute);
    expect((await listSteps(store, again.runId)).find((step) => step.name === 'fail-stale-preparations')).toMatchObject(
      {
        summary: '1 preparations failed as interrupted, 20 logs deleted',
      },
    );
    expect(await getDelivery(store, recent)).toMatchObject({ state: 'preparation_failed' });
    expect(await countLogs(store, stale)).toBe(30);
  });

  it('a live preparation renews its progress with every batch, so it is not taken for interrupted', async () => {
    const store = context.store();
    await insertList(store, 'live', recipients(30, 'live'));
    const delivery = await createDelivery(store, definition('live', 'live'), { validityHours: 24 }, start);
    const clock = manualClock(start);
    const real = preparationStore(store);
    let managerRan = false;
    const slowStore: PreparationStore = {
      ...real,
      async insertLogs(deliveryId, range, now) {
        clock.advance(20 * minute); // every batch takes 20 minutes: 60 in all, but never 30 without progress
        const inserted = await real.insertLogs(deliveryId, range, now);
        const run = await runDeliveryManager(store, clock.now());
        managerRan = true;
        expect(
          (await listSteps(store, run.runId)).find((step) => step.name === 'fail-stale-preparations')?.summary,
        ).toBe('0 preparations failed as interrupted, 0 logs deleted');
        return inserted;
      },
    };
    const outcome = await prepareDelivery(slowStore, delivery.id, { batchSize: 10, clock, isValidAddress });
    expect(managerRan).toBe(true);
    expect(outcome).toMatchObject({ kind: 'prepared', counts: { prepared: 30 } });
  });

  it('a preparation that finds its delivery failed under it stops with INVALID_STATE and leaves no logs', async () => {
    const store = context.store();
    await insertList(store, 'slow', recipients(30, 'slow'));
    const delivery = await createDelivery(store, definition('slow', 'slow'), { validityHours: 24 }, start);
    const clock = manualClock(start);
    const real = preparationStore(store);
    let batches = 0;
    // The process hangs for 31 minutes after its first batch; delivery-manager runs meanwhile.
    const hangingStore: PreparationStore = {
      ...real,
      async insertLogs(deliveryId, range, now) {
        const inserted = await real.insertLogs(deliveryId, range, now);
        batches += 1;
        if (batches === 1) {
          clock.advance(31 * minute);
          await runDeliveryManager(store, clock.now());
        }
        return inserted;
      },
    };
    const failure = await prepareDelivery(hangingStore, delivery.id, { batchSize: 10, clock, isValidAddress }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(AppError);
    expect(failure).toMatchObject({ code: 'INVALID_STATE', details: { deliveryId: delivery.id } });
    expect(batches).toBe(1);
    expect(await countLogs(store, delivery.id)).toBe(0);
    // The workflow's verdict stands: the stopped preparation does not overwrite it.
    const row = await getDelivery(store, delivery.id);
    expect(row.state).toBe('preparation_failed');
    expect(row.last_error).toMatch(
      /^interrupted: no progress since 2026-07-01T10:00:00\.000Z; run `herald delivery prepare \d+` again$/,
    );
  });
});
