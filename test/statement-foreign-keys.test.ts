import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import type { Store } from '../src/store/database.ts';
import type { NewDeliveryLog } from '../src/store/tables.ts';
import { describeEachDialect, openMigratedDatabase, postgresUnavailable } from './support/databases.ts';
import { deliveryDefinition } from './support/fixtures.ts';

// A log belongs to a delivery that exists, a recipient to a list: SQLite keeps the foreign keys,
// PostgreSQL enforces them per statement (migrations 0034, 0035). Both must behave alike.

function log(deliveryId: number, i: number): NewDeliveryLog {
  return {
    delivery_id: deliveryId,
    email: `user${i}@fk.test`,
    address_key: `user${i}@fk.test`,
    domain: 'fk.test',
    data: '{}',
    status: 'pending',
    attempts: 0,
    next_attempt_at: 0,
    updated_at: 0,
  };
}

async function newDelivery(store: Store): Promise<number> {
  return (await createDelivery(store, deliveryDefinition({ listName: null }), { validityHours: 24 }, 0)).id;
}

const countLogs = async (store: Store, deliveryId: number) =>
  Number(
    (
      await store.db
        .selectFrom('delivery_logs')
        .select(sql<number>`count(*)`.as('n'))
        .where('delivery_id', '=', deliveryId)
        .executeTakeFirstOrThrow()
    ).n,
  );

describeEachDialect('delivery logs belong to a delivery', (context) => {
  const violation = () => (context.dialect === 'postgres' ? '23503' : 'SQLITE_CONSTRAINT_FOREIGNKEY');

  it('refuses a statement with a log of a missing delivery as a whole', async () => {
    const store = context.store();
    const existing = await newDelivery(store);
    const insert = store.db
      .insertInto('delivery_logs')
      .values([log(existing, 1), log(existing + 1_000, 2)])
      .execute();
    await expect(insert).rejects.toMatchObject({ code: violation() });
    expect(await countLogs(store, existing)).toBe(0);
  });

  it('refuses moving a log to a missing delivery', async () => {
    const store = context.store();
    const existing = await newDelivery(store);
    await store.db.insertInto('delivery_logs').values(log(existing, 1)).execute();
    const move = store.db
      .updateTable('delivery_logs')
      .set({ delivery_id: existing + 1_000 })
      .where('delivery_id', '=', existing)
      .execute();
    await expect(move).rejects.toMatchObject({ code: violation() });
    expect(await countLogs(store, existing)).toBe(1);
  });

  it('recipients belong to a list the same way (migration 0035 on PostgreSQL)', async () => {
    const store = context.store();
    const list = async (name: string) =>
      (await store.db.insertInto('lists').values({ name, created_at: 0 }).returning('id').executeTakeFirstOrThrow()).id;
    const [doomed, kept] = [await list('fk-doomed'), await list('fk-kept')];
    const recipient = (listId: number, i: number) => ({
      list_id: listId,
      email: `r${i}@fk.test`,
      domain: 'fk.test',
      data: '{}',
      created_at: 0,
      updated_at: 0,
    });
    const orphan = store.db
      .insertInto('recipients')
      .values([recipient(kept, 1), recipient(kept + 1_000, 2)])
      .execute();
    await expect(orphan).rejects.toMatchObject({ code: violation() });
    await store.db
      .insertInto('recipients')
      .values([recipient(doomed, 1), recipient(doomed, 2), recipient(kept, 1)])
      .execute();
    await store.db.deleteFrom('lists').where('id', '=', doomed).execute();
    const left = await store.db
      .selectFrom('recipients')
      .select('list_id')
      .where('list_id', 'in', [doomed, kept])
      .execute();
    expect(left.map((row) => Number(row.list_id))).toEqual([kept]);
  });

  it("deletes a delivery's logs with it, and only its logs", async () => {
    const store = context.store();
    const [doomed, kept] = [await newDelivery(store), await newDelivery(store)];
    await store.db
      .insertInto('delivery_logs')
      .values([log(doomed, 1), log(doomed, 2), log(kept, 1)])
      .execute();
    await store.db.deleteFrom('deliveries').where('id', '=', doomed).execute();
    expect(await countLogs(store, doomed)).toBe(0);
    expect(await countLogs(store, kept)).toBe(1);
  });
});

describe.skipIf(postgresUnavailable !== undefined)('delivery logs belong to a delivery [postgres, concurrent]', () => {
  let opened: Awaited<ReturnType<typeof openMigratedDatabase>> | undefined;
  beforeAll(async () => {
    opened = await openMigratedDatabase('postgres');
  });
  afterAll(async () => {
    await opened?.store.close();
    await opened?.database.drop();
  });

  it('a delivery deleted while its logs are being written waits for them, then deletes them too', async () => {
    const store = opened!.store;
    const deliveryId = await newDelivery(store);
    let deleting: Promise<unknown> | undefined;
    let deleted = false;
    await store.db.transaction().execute(async (writer) => {
      await writer
        .insertInto('delivery_logs')
        .values([log(deliveryId, 1), log(deliveryId, 2)])
        .execute();
      // Another connection deletes the delivery: it must wait for the writer's lock on the delivery
      // (without it, it would finish first and the writer's logs would outlive their delivery).
      deleting = store.db
        .deleteFrom('deliveries')
        .where('id', '=', deliveryId)
        .execute()
        .then(() => {
          deleted = true;
        });
      while (!deleted) {
        const waiting = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query like 'delete from "deliveries"%'`.execute(store.db);
        if (waiting.rows[0]!.n > 0) break;
      }
    });
    await deleting;
    expect(await countLogs(store, deliveryId)).toBe(0);
  });
});
