import { sql } from 'kysely';
import pg from 'pg';
import { expect, it } from 'vitest';
import { describeEachDialect } from './support/databases.ts';

// Nothing runs at import time: store/database.ts is imported (through support/databases.ts) and pg's
// global type registry is untouched; Herald's own pool still reads int8 and numeric as numbers.

it("importing the store leaves pg's global type parsers alone", () => {
  expect(pg.types.getTypeParser(20)('9007199254740993')).toBe('9007199254740993');
  expect(pg.types.getTypeParser(1700)('1.5')).toBe('1.5');
});

describeEachDialect('store connection', (context) => {
  it('reads counts (int8) and numerics as numbers', async () => {
    const row = await context
      .store()
      .db.selectNoFrom([sql<number>`count(*)`.as('n'), sql<number>`cast(1.5 as numeric)`.as('x')])
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ n: 1, x: 1.5 });
  });
});
