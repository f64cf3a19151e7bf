import { sql, type Kysely } from 'kysely';

// One unique address index per delivery log instead of two (issue 18, preparation speed): every
// insert into delivery_logs paid for both (delivery_id, email) and (delivery_id, address_key), two
// text indexes whose insertion points are scattered (addresses are not in id order), the costliest
// entries a preparation writes (measured: 15 % of PostgreSQL's insert time). address_key is unique
// per delivery and equal emails have equal keys, so it already enforces what the email index did.
// Logs written without a key (before migration 0021, mid-sourcing parts) get their email as key:
// every log has one now, and mid-sourcing's duplicate check moves to the key (the marketing instance
// folded case already; the execution side keeps its addresses as received).
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update delivery_logs set address_key = email where address_key is null`.execute(db);
  await sql`drop index if exists delivery_logs_delivery_email`.execute(db);
}
