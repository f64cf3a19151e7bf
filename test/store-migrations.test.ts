import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { createDelivery } from '../src/delivery/delivery-store.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { up as oneAddressIndex } from '../src/store/migrations/0032-one-address-index.ts';
import { describeEachDialect } from './support/databases.ts';
import { deliveryDefinition } from './support/fixtures.ts';

describeEachDialect('migrations', (context) => {
  it('creates every table and is a no-op the second time', async () => {
    const store = context.store();
    const now = Date.now();
    const list = await store.db
      .insertInto('lists')
      .values({ name: 'm', created_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    expect(list.id).toBeTypeOf('number');
    expect(await migrateToLatest(store)).toEqual([]);
    const count = await store.db.selectFrom('lists').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(1);
  });

  it('0032 gives logs without an address key their email as key, and one log per key per delivery', async () => {
    const store = context.store();
    const delivery = await createDelivery(
      store,
      deliveryDefinition({ listName: null }),
      { validityHours: 120 },
      Date.now(),
    );
    const log = (email: string) => ({
      delivery_id: delivery.id,
      email,
      domain: 'accept.test',
      data: '{}',
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: 0,
      updated_at: 0,
    });
    await store.db
      .insertInto('delivery_logs')
      .values([log('Old@accept.test'), log('old@accept.test')])
      .execute();
    await oneAddressIndex(store.db as never);
    const keys = await store.db
      .selectFrom('delivery_logs')
      .select('address_key')
      .where('delivery_id', '=', delivery.id)
      .orderBy('id')
      .execute();
    expect(keys.map((row) => row.address_key)).toEqual(['Old@accept.test', 'old@accept.test']);
    await expect(
      store.db
        .insertInto('delivery_logs')
        .values({ ...log('old@accept.test'), address_key: 'old@accept.test' })
        .execute(),
    ).rejects.toThrow(/unique|UNIQUE/);
  });
});
