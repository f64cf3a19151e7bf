import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createDelivery, getDelivery } from '../src/delivery/delivery-store.ts';
import { preparationStore, type PreparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { countLogs } from '../src/delivery/preparation-store.ts';
import type { Store } from '../src/store/database.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition, insertList } from './support/fixtures.ts';

// A `herald delivery prepare` process frozen past its liveness lease (SIGSTOP, a VM paused, a swap
// storm) is taken over by the next `prepare`; when it wakes it must neither write nor delete anything.

const leaseMs = 30_000;
const isValidAddress = () => true;

/** A preparation store that freezes after its first batch is written, until `wake()`. */
function freezingStore(real: PreparationStore) {
  let wake = () => {};
  const woken = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let frozeNow = () => {};
  const frozen = new Promise<void>((resolve) => {
    frozeNow = resolve;
  });
  let batches = 0;
  let asleep = false;
  const gate = async () => {
    if (asleep) await woken;
  };
  const store: PreparationStore = {
    ...real,
    async insertLogs(deliveryId, range, now) {
      await gate();
      const inserted = await real.insertLogs(deliveryId, range, now);
      if (++batches === 1) {
        asleep = true;
        frozeNow();
        await woken;
      }
      return inserted;
    },
    async recordProgress(deliveryId, now) {
      await gate();
      return real.recordProgress(deliveryId, now);
    },
  };
  return { store, frozen, wake };
}

async function listAndDelivery(store: Store, name: string, count: number, now: number): Promise<number> {
  await insertList(
    store,
    name,
    Array.from({ length: count }, (_, i) => ({ email: `r${i}@${name}.test` })),
  );
  return (await createDelivery(store, deliveryDefinition({ listName: name }), { validityHours: 24 }, now)).id;
}

/** A delivery of 30 recipients whose preparation froze after its first batch, its lease run out since. */
async function frozenPastItsLease(store: Store, name: string) {
  const clock = manualClock();
  const id = await listAndDelivery(store, name, 30, clock.now());
  const first = freezingStore(preparationStore(store));
  const frozenRun = prepareDelivery(first.store, id, { batchSize: 10, clock, isValidAddress, leaseMs });
  frozenRun.catch(() => {});
  await first.frozen;
  clock.advance(2 * leaseMs);
  return { id, clock, first, frozenRun };
}

describeEachDialect('preparation taken over from a frozen process', (context) => {
  it('the frozen preparation, waking after the takeover finished, leaves the new logs and counts alone', async () => {
    const store = context.store();
    const { id, clock, first, frozenRun } = await frozenPastItsLease(store, 'frozen-after');

    const takeover = await prepareDelivery(preparationStore(store), id, {
      batchSize: 10,
      clock,
      isValidAddress,
      leaseMs,
    });
    expect(takeover).toMatchObject({ kind: 'prepared', counts: { target: 30, prepared: 30 } });

    first.wake();
    await expect(frozenRun).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(await countLogs(store, id)).toBe(30);
    expect(await getDelivery(store, id)).toMatchObject({ state: 'prepared', target_count: 30, excluded_count: 0 });
  });

  it('the frozen preparation, waking while the takeover runs, writes nothing more and the takeover counts right', async () => {
    const store = context.store();
    const { id, clock, first, frozenRun } = await frozenPastItsLease(store, 'frozen-during');

    // The first process wakes once the new one has written its first batch.
    const real = preparationStore(store);
    let woke = false;
    const second: PreparationStore = {
      ...real,
      async insertLogs(deliveryId, range, now) {
        const inserted = await real.insertLogs(deliveryId, range, now);
        if (!woke) {
          woke = true;
          first.wake();
          await frozenRun.catch(() => {});
        }
        return inserted;
      },
    };
    const takeover = await prepareDelivery(second, id, { batchSize: 10, clock, isValidAddress, leaseMs });
    await expect(frozenRun).rejects.toMatchObject({ code: 'INVALID_STATE' });
    expect(takeover).toMatchObject({
      kind: 'prepared',
      counts: { target: 30, prepared: 30, excluded: { duplicate: 0 } },
    });
    expect(await countLogs(store, id)).toBe(30);
    expect(await getDelivery(store, id)).toMatchObject({ state: 'prepared', target_count: 30, excluded_count: 0 });
  });
});
