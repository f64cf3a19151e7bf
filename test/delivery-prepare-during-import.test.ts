import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { createDelivery, getDelivery } from '../src/delivery/delivery-store.ts';
import { preparationStore, prepareDelivery } from '../src/delivery/preparation.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition, insertList } from './support/fixtures.ts';

// A delivery prepared while an import is still reading or applying its file targeted whatever part
// of the list was in at that moment, silently: the rest of the file never got the mail. Now the
// preparation is refused with nothing changed while the import's process is alive; an import whose
// process died (its lease not renewed) does not hold it back.

describeEachDialect('preparing a delivery while its list is being imported into', (context) => {
  it('is refused, nothing changed, until the import ends or its process is gone', async () => {
    const store = context.store();
    const clock = manualClock(Date.UTC(2026, 11, 8, 10, 0));
    const list = `importing-${context.dialect}`;
    const listId = await insertList(
      store,
      list,
      Array.from({ length: 3 }, (_, i) => ({ email: `r${i}@accept.test` })),
    );
    const { id } = await createDelivery(
      store,
      deliveryDefinition({ listName: list }),
      { validityHours: 24 },
      clock.now(),
    );
    const stateBefore = (await getDelivery(store, id)).state;
    const running = await store.db
      .insertInto('imports')
      .values({
        list_id: listId,
        file_name: 'customers.csv',
        state: 'running',
        read_count: 340_000,
        imported_count: 0,
        updated_count: 0,
        rejected_count: 0,
        started_at: clock.now() - 30_000,
        updated_at: clock.now() - 5_000,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const prepare = () =>
      prepareDelivery(preparationStore(store), id, {
        batchSize: 100,
        clock,
        isValidAddress: () => true,
        importLeaseMs: 60_000,
      });

    await expect(prepare()).rejects.toMatchObject({
      code: 'INVALID_STATE',
      message: expect.stringContaining(
        `its list is being imported into (import ${running.id}, customers.csv, 340000 rows read so far)`,
      ),
    });
    expect((await getDelivery(store, id)).state).toBe(stateBefore);
    const logs = await store.db.selectFrom('delivery_logs').select('id').where('delivery_id', '=', id).execute();
    expect(logs).toHaveLength(0);

    // Its process stopped renewing the lease: preparation goes ahead with what the list holds.
    clock.advance(60_000);
    const outcome = await prepare();
    expect(outcome).toMatchObject({ kind: 'prepared', counts: { prepared: 3 } });
  });
});
