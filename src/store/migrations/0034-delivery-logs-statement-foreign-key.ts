import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

// Preparation on PostgreSQL (issue 18): the foreign key from delivery_logs to deliveries checked every
// inserted log on its own (a query and a row lock per log), ~3 s of the server's CPU for 1M logs, on
// the path every batch waits for. It is enforced per statement instead, with the same guarantees:
// - a statement that writes logs locks the deliveries they name (FOR KEY SHARE, as the foreign key
//   did for each log) and fails with foreign_key_violation (23503) when one does not exist, so a
//   delivery cannot be deleted under logs being written;
// - deleting a delivery deletes its logs (ON DELETE CASCADE before): after the delivery's row is
//   gone, so logs committed by a writer it waited for are seen and deleted too.
// SQLite keeps its foreign key: its check is one primary-key look-up per log, no cost worth a change.
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect !== 'postgres') return;
  await sql`
    create function herald_delivery_logs_check_deliveries() returns trigger language plpgsql as $$
    declare
      missing bigint;
    begin
      perform 1 from deliveries
        where id in (select distinct delivery_id from new_rows)
        order by id
        for key share;
      select n.delivery_id into missing from new_rows n
        where not exists (select 1 from deliveries d where d.id = n.delivery_id)
        limit 1;
      if found then
        raise foreign_key_violation using
          message = format('delivery_logs: delivery %s does not exist', missing),
          constraint = 'delivery_logs_delivery_id_fkey';
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger delivery_logs_check_deliveries_insert after insert on delivery_logs
    referencing new table as new_rows for each statement
    execute function herald_delivery_logs_check_deliveries()`.execute(db);
  // Nothing moves a log to another delivery; should something, each moved log is checked (a row
  // trigger: one on every update statement would cost the MTA's outcome writes).
  await sql`
    create function herald_delivery_logs_check_moved_delivery() returns trigger language plpgsql as $$
    begin
      perform 1 from deliveries where id = new.delivery_id for key share;
      if not found then
        raise foreign_key_violation using
          message = format('delivery_logs: delivery %s does not exist', new.delivery_id),
          constraint = 'delivery_logs_delivery_id_fkey';
      end if;
      return new;
    end $$`.execute(db);
  await sql`
    create trigger delivery_logs_check_moved_delivery before update of delivery_id on delivery_logs
    for each row when (new.delivery_id is distinct from old.delivery_id)
    execute function herald_delivery_logs_check_moved_delivery()`.execute(db);
  await sql`
    create function herald_deliveries_delete_logs() returns trigger language plpgsql as $$
    begin
      delete from delivery_logs where delivery_id = old.id;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger deliveries_delete_logs after delete on deliveries
    for each row execute function herald_deliveries_delete_logs()`.execute(db);
  await sql`alter table delivery_logs drop constraint delivery_logs_delivery_id_fkey`.execute(db);
}
