import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';
import { bigint } from './column-types.ts';

// A webhook secret could not be changed: a leaked one meant deleting the subscription (its waiting
// events with it) or a second subscription (every event twice, under other ids). Rotated, the
// previous secret keeps signing next to the new one until `previous_secret_until`, so the receiver
// switches when it is ready (docs/webhooks.md).
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('webhook_subscriptions').addColumn('previous_secret', 'text').execute();
  await db.schema.alterTable('webhook_subscriptions').addColumn('previous_secret_until', bigint).execute();
}
