import type { Kysely } from 'kysely';

// - address_events by delivery: the doctor counts each delivery's complaints and unsubscribes
//   (complaint rate against the providers' 0.1 % / 0.3 % thresholds) without scanning every event.
// - delivery_logs.address_key: the recipient address as preparation compares addresses (domain
//   case folded, and by default the local part's case too); unique per delivery, so a list holding
//   `Ann@Example.com` and `ann@example.com` gets one log. NULL (logs written before, mid-sourcing
//   parts) never conflicts.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('address_events_delivery_source')
    .on('address_events')
    .columns(['delivery_id', 'source'])
    .execute();
  await db.schema.alterTable('delivery_logs').addColumn('address_key', 'text').execute();
  await db.schema
    .createIndex('delivery_logs_delivery_address_key')
    .on('delivery_logs')
    .columns(['delivery_id', 'address_key'])
    .unique()
    .execute();
}
