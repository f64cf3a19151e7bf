import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint, notNull } from './column-types.ts';

// Counters of delivery logs kept by triggers (migrations 0029, 0033), whoever writes a log: the
// counter changes in the same transaction (SQLite: one upsert per changed key; PostgreSQL: statement
// triggers appending one delta row per key, folded later by the delivery-manager workflow, so
// concurrent writers never wait on a counter row). A migration's SQL must never change once shipped:
// change this file only in ways that generate the same statements.

export interface Counter {
  table: string;
  /** Key columns after delivery_id, in order. */
  columns: string[];
  /** The key's values for a row alias (delivery_id excluded), in `columns` order. */
  keyOf(row: string): string[];
  /** Whether a row is counted at all. */
  counted(row: string): string;
  /** Columns whose change can move a row between keys (SQLite's `update of`). */
  watched: string[];
}

const stillThere = (row: string) => `exists (select 1 from deliveries d where d.id = ${row}.delivery_id)`;

export async function createCounter(db: Kysely<unknown>, dialect: Dialect, counter: Counter): Promise<void> {
  const { table } = counter;
  const key = ['delivery_id', ...counter.columns];
  const columns = [...key, 'n'].join(', ');
  const keyOf = (row: string) => [`${row}.delivery_id`, ...counter.keyOf(row)].join(', ');
  const groupAll = key.map((_, i) => i + 1).join(', ');
  let create = db.schema.createTable(table).addColumn('delivery_id', bigint, notNull);
  for (const column of counter.columns)
    create = create.addColumn(column, column === 'minute' ? bigint : 'text', notNull);
  await create.addColumn('n', bigint, notNull).execute();
  await (dialect === 'postgres'
    ? db.schema.createIndex(`${table}_delivery`).on(table).columns(key)
    : db.schema.createIndex(`${table}_key`).unique().on(table).columns(key)
  ).execute();
  await sql
    .raw(
      `insert into ${table} (${columns}) select ${keyOf('l')}, count(*) from delivery_logs l
       where ${counter.counted('l')} group by ${groupAll}`,
    )
    .execute(db);

  if (dialect === 'postgres') {
    const deltas = (source: string, sign: string, extra = '') =>
      `select ${keyOf('r')}, ${sign} from ${source} r where ${counter.counted('r')}${extra}`;
    await sql
      .raw(`create function herald_${table}() returns trigger language plpgsql as $$
        begin
          if TG_OP = 'INSERT' then
            insert into ${table} (${columns})
              select ${keyOf('r')}, count(*) from new_rows r where ${counter.counted('r')} group by ${groupAll};
          elsif TG_OP = 'UPDATE' then
            insert into ${table} (${columns})
              select ${key.map((c) => `k.${c}`).join(', ')}, sum(k.d) from (
                ${deltas('old_rows', '-1')} union all ${deltas('new_rows', '1')}
              ) as k (${key.join(', ')}, d)
              group by ${groupAll} having sum(k.d) <> 0;
          else
            insert into ${table} (${columns})
              select ${keyOf('r')}, -count(*) from old_rows r where ${counter.counted('r')} and ${stillThere('r')}
              group by ${groupAll};
          end if;
          return null;
        end $$`)
      .execute(db);
    for (const [event, referencing] of [
      ['insert', 'new table as new_rows'],
      ['update', 'old table as old_rows new table as new_rows'],
      ['delete', 'old table as old_rows'],
    ] as const)
      await sql
        .raw(`create trigger ${table}_${event} after ${event} on delivery_logs
          referencing ${referencing} for each statement execute function herald_${table}()`)
        .execute(db);
    await sql
      .raw(`create function herald_${table}_purge() returns trigger language plpgsql as $$
        begin delete from ${table} where delivery_id = OLD.id; return null; end $$`)
      .execute(db);
    await sql
      .raw(`create trigger ${table}_purge after delete on deliveries for each row
        execute function herald_${table}_purge()`)
      .execute(db);
    return;
  }
  const upsert = (row: string, delta: number) =>
    `insert into ${table} (${columns}) select ${keyOf(row)}, ${delta} where ${counter.counted(row)}
     on conflict (${key.join(', ')}) do update set n = ${table}.n + excluded.n;`;
  const keyRow = (row: string) => `(${counter.counted(row)}, ${keyOf(row)})`;
  await sql
    .raw(`create trigger ${table}_insert after insert on delivery_logs when ${counter.counted('NEW')}
      begin ${upsert('NEW', 1)} end`)
    .execute(db);
  await sql
    .raw(`create trigger ${table}_update after update of ${counter.watched.join(', ')} on delivery_logs
      when (${counter.counted('OLD')} or ${counter.counted('NEW')}) and ${keyRow('OLD')} is not ${keyRow('NEW')}
      begin ${upsert('OLD', -1)} ${upsert('NEW', 1)} end`)
    .execute(db);
  await sql
    .raw(`create trigger ${table}_delete after delete on delivery_logs
      when ${counter.counted('OLD')} and ${stillThere('OLD')}
      begin ${upsert('OLD', -1)} end`)
    .execute(db);
  await sql
    .raw(`create trigger ${table}_purge after delete on deliveries
      begin delete from ${table} where delivery_id = OLD.id; end`)
    .execute(db);
}
