import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint } from './column-types.ts';

// Two api processes on one database (a second `herald start` with every role, a standby) each ran
// a dispatcher: both sent the same batch at once, and a subscription had two requests in flight,
// its events no longer in order. A dispatcher now holds a subscription's lease for each request
// (webhooks/webhook-store.ts claimSubscription); a crashed holder's lease runs out.
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('webhook_subscriptions').addColumn('dispatch_holder', 'text').execute();
  await db.schema.alterTable('webhook_subscriptions').addColumn('dispatch_until', bigint).execute();
}
