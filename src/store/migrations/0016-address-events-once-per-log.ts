import { sql, type Kysely } from 'kysely';

// An unsubscribe or a complaint is a fact about one delivery log: replayed one-click POSTs, a mail
// client sending its mailto: unsubscribe twice or an ISP resending a feedback report must not add
// timeline rows. Earlier duplicates are removed (the first row of each log and kind stays), then a
// partial unique index makes the rule hold for every writer (src/quarantine/address-events.ts skips
// known ones; the insert ignores a concurrent one).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    delete from address_events
    where source in ('unsubscribe', 'complaint')
      and delivery_log_id is not null
      and id not in (
        select min(id) from address_events
        where source in ('unsubscribe', 'complaint') and delivery_log_id is not null
        group by delivery_log_id, source
      )
  `.execute(db);
  await sql`
    create unique index address_events_once_per_log on address_events (delivery_log_id, source)
    where source in ('unsubscribe', 'complaint') and delivery_log_id is not null
  `.execute(db);
}
