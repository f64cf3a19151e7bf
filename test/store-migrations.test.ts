import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { migrateToLatest } from '../src/store/migrate.ts';
import { describeEachDialect } from './support/databases.ts';

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
});
