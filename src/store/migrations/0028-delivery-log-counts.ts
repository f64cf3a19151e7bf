import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint, notNull } from './column-types.ts';

// Delivery summaries without counting over delivery logs (issue 14, item 1 performance): counts of
// logs per delivery, status, failure reason and "retried" (attempts > 1), kept up to date by
// triggers in the transaction of every insert, update and delete of delivery_logs, whoever writes
// (preparation, the MTA, the inbound role, mid-sourcing, cleanup). A summary reads a few rows.
// `sending` (claimed by an MTA) is counted as `pending`, as every reader shows it, so a claim
// changes no count: it writes nothing here (no contention between MTAs claiming).
// SQLite (one writer at a time): row triggers, one upsert per changed key, one row per key.
// PostgreSQL: statement triggers over transition tables append one delta row per changed key and
// statement, never updating a shared row: concurrent writers of one delivery (MTAs, the inbound role,
// mid-sourcing) never wait for each other's counter locks. Readers sum the rows of a key; the
// delivery-manager workflow folds each delivery's deltas into one row per key. An update whose rows
// keep their key writes nothing.
// A delivery's counts are deleted with it; logs deleted by its cascade do not recreate them.

const bucket = (row: string) => `case ${row}.status when 'sending' then 'pending' else ${row}.status end`;
const keyOf = (row: string, dialect: Dialect) =>
  `${row}.delivery_id, ${bucket(row)}, coalesce(${row}.failure_reason, ''), ${dialect === 'postgres' ? `(${row}.attempts > 1)::int` : `(${row}.attempts > 1)`}`;
const columns = 'delivery_id, status, failure_reason, retried, n';
const onConflict =
  'on conflict (delivery_id, status, failure_reason, retried) do update set n = delivery_log_counts.n + excluded.n';

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('delivery_log_counts')
    .addColumn('delivery_id', bigint, notNull)
    .addColumn('status', 'text', notNull)
    .addColumn('failure_reason', 'text', notNull)
    .addColumn('retried', 'integer', notNull)
    .addColumn('n', bigint, notNull)
    .execute();
  const key = ['delivery_id', 'status', 'failure_reason', 'retried'];
  await (dialect === 'postgres'
    ? db.schema.createIndex('delivery_log_counts_delivery').on('delivery_log_counts').columns(key)
    : db.schema.createIndex('delivery_log_counts_key').unique().on('delivery_log_counts').columns(key)
  ).execute();
  await sql
    .raw(
      `insert into delivery_log_counts (${columns})
       select ${keyOf('l', dialect)}, count(*) from delivery_logs l group by 1, 2, 3, 4`,
    )
    .execute(db);
  const stillThere = (row: string) => `exists (select 1 from deliveries d where d.id = ${row}.delivery_id)`;

  if (dialect === 'postgres') {
    await sql
      .raw(`create function herald_delivery_log_counts() returns trigger language plpgsql as $$
        begin
          if TG_OP = 'INSERT' then
            insert into delivery_log_counts (${columns})
              select ${keyOf('r', dialect)}, count(*) from new_rows r group by 1, 2, 3, 4;
          elsif TG_OP = 'UPDATE' then
            insert into delivery_log_counts (${columns})
              select k.delivery_id, k.status, k.failure_reason, k.retried, sum(k.d) from (
                select ${keyOf('o', dialect)}, -1 from old_rows o
                union all
                select ${keyOf('r', dialect)}, 1 from new_rows r
              ) as k (delivery_id, status, failure_reason, retried, d)
              group by 1, 2, 3, 4 having sum(k.d) <> 0;
          else
            insert into delivery_log_counts (${columns})
              select ${keyOf('o', dialect)}, -count(*) from old_rows o where ${stillThere('o')}
              group by 1, 2, 3, 4;
          end if;
          return null;
        end $$`)
      .execute(db);
    await sql
      .raw(`create trigger delivery_log_counts_insert after insert on delivery_logs
        referencing new table as new_rows for each statement execute function herald_delivery_log_counts()`)
      .execute(db);
    await sql
      .raw(`create trigger delivery_log_counts_update after update on delivery_logs
        referencing old table as old_rows new table as new_rows for each statement execute function herald_delivery_log_counts()`)
      .execute(db);
    await sql
      .raw(`create trigger delivery_log_counts_delete after delete on delivery_logs
        referencing old table as old_rows for each statement execute function herald_delivery_log_counts()`)
      .execute(db);
    await sql
      .raw(`create function herald_delivery_log_counts_purge() returns trigger language plpgsql as $$
        begin delete from delivery_log_counts where delivery_id = OLD.id; return null; end $$`)
      .execute(db);
    await sql
      .raw(`create trigger delivery_log_counts_purge after delete on deliveries for each row
        execute function herald_delivery_log_counts_purge()`)
      .execute(db);
    return;
  }
  const upsert = (row: string, delta: number) =>
    `insert into delivery_log_counts (${columns}) values (${keyOf(row, dialect)}, ${delta}) ${onConflict};`;
  await sql
    .raw(`create trigger delivery_log_counts_insert after insert on delivery_logs begin ${upsert('NEW', 1)} end`)
    .execute(db);
  await sql
    .raw(`create trigger delivery_log_counts_update after update of status, failure_reason, attempts on delivery_logs
      when ${bucket('OLD')} is not ${bucket('NEW')} or OLD.failure_reason is not NEW.failure_reason
        or (OLD.attempts > 1) is not (NEW.attempts > 1)
      begin ${upsert('OLD', -1)} ${upsert('NEW', 1)} end`)
    .execute(db);
  await sql
    .raw(`create trigger delivery_log_counts_delete after delete on delivery_logs when ${stillThere('OLD')}
      begin ${upsert('OLD', -1)} end`)
    .execute(db);
  await sql
    .raw(`create trigger delivery_log_counts_purge after delete on deliveries
      begin delete from delivery_log_counts where delivery_id = OLD.id; end`)
    .execute(db);
}
