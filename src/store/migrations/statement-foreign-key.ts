import { sql, type Kysely } from 'kysely';

// PostgreSQL: a foreign key enforced per statement instead of per row (migrations 0034, 0035). A
// foreign key checks every inserted row on its own (a query and a row lock per row: ~3 s of the
// server's CPU per million rows), on paths that write rows by the million. The same guarantees:
// - a statement that writes rows locks the parents they name once (FOR KEY SHARE, as the foreign
//   key did for each row) and fails with foreign_key_violation (23503) when one does not exist, so a
//   parent cannot be deleted under rows being written;
// - a row moved to another parent is checked on its own (a row trigger: nothing moves rows, and a
//   statement trigger would cost every update);
// - deleting a parent deletes its rows (ON DELETE CASCADE before): after the parent's row is gone,
//   so rows committed by a writer the delete waited for are seen and deleted too.
// SQLite keeps its foreign keys: their check is one primary-key look-up per row.

export interface StatementForeignKey {
  table: string;
  column: string;
  parent: string;
  /** The foreign key constraint it replaces (dropped), named in the errors as before. */
  constraint: string;
}

export async function replaceByStatementForeignKey(db: Kysely<unknown>, key: StatementForeignKey): Promise<void> {
  const { table, column, parent, constraint } = key;
  const name = (text: string) => sql.raw(text);
  const check = `herald_${table}_check_${parent}`;
  const checkMoved = `herald_${table}_check_moved_${column}`;
  const cascade = `herald_${parent}_delete_${table}`;
  await sql`
    create function ${name(check)}() returns trigger language plpgsql as $$
    declare
      missing bigint;
    begin
      perform 1 from ${name(parent)}
        where id in (select distinct ${name(column)} from new_rows)
        order by id
        for key share;
      select n.${name(column)} into missing from new_rows n
        where not exists (select 1 from ${name(parent)} p where p.id = n.${name(column)})
        limit 1;
      if found then
        raise foreign_key_violation using
          message = format('${name(table)}: ${name(parent)} %s does not exist', missing),
          constraint = '${name(constraint)}';
      end if;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger ${name(`${table}_check_${parent}_insert`)} after insert on ${name(table)}
    referencing new table as new_rows for each statement execute function ${name(check)}()`.execute(db);
  await sql`
    create function ${name(checkMoved)}() returns trigger language plpgsql as $$
    begin
      perform 1 from ${name(parent)} where id = new.${name(column)} for key share;
      if not found then
        raise foreign_key_violation using
          message = format('${name(table)}: ${name(parent)} %s does not exist', new.${name(column)}),
          constraint = '${name(constraint)}';
      end if;
      return new;
    end $$`.execute(db);
  await sql`
    create trigger ${name(`${table}_check_moved_${column}`)} before update of ${name(column)} on ${name(table)}
    for each row when (new.${name(column)} is distinct from old.${name(column)})
    execute function ${name(checkMoved)}()`.execute(db);
  await sql`
    create function ${name(cascade)}() returns trigger language plpgsql as $$
    begin
      delete from ${name(table)} where ${name(column)} = old.id;
      return null;
    end $$`.execute(db);
  await sql`
    create trigger ${name(`${parent}_delete_${table}`)} after delete on ${name(parent)}
    for each row execute function ${name(cascade)}()`.execute(db);
  await sql`alter table ${name(table)} drop constraint ${name(constraint)}`.execute(db);
}
