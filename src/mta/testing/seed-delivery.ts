import type { Kysely } from 'kysely';
import type { Database, DeliveryState } from '../../store/tables.ts';

// Inserts an in-progress delivery and its delivery logs directly, the way preparation leaves them.
// Used by the MTA's integration tests and bench/send.ts (preparation itself is tested elsewhere).

export interface SeedDeliveryOptions {
  recipients: readonly { email: string; data?: Record<string, unknown> }[];
  now: number;
  state?: DeliveryState;
  fromAddress?: string;
  fromName?: string | null;
  replyTo?: string | null;
  subject?: string;
  html?: string | null;
  text?: string | null;
  validUntil?: number | null;
  nextAttemptAt?: number;
  /** The delivery's affinity (pool of source addresses); default none. */
  affinity?: string | null;
  /** Fair share (migration 0031); defaults 5 and 1. */
  priority?: number;
  weight?: number;
}

export async function seedDelivery(
  db: Kysely<Database>,
  options: SeedDeliveryOptions,
): Promise<{ deliveryId: number; logIds: number[] }> {
  const { now } = options;
  const delivery = await db
    .insertInto('deliveries')
    .values({
      name: `seed-${now}-${Math.random().toString(36).slice(2, 8)}`,
      state: options.state ?? 'in_progress',
      from_address: options.fromAddress ?? 'news@brand.test',
      from_name: options.fromName === undefined ? 'Brand' : options.fromName,
      reply_to: options.replyTo ?? null,
      subject_template: options.subject ?? 'Hello {{ first_name }}',
      html_template: options.html === undefined ? '<p>Hello {{ first_name }}</p>' : options.html,
      text_template: options.text === undefined ? 'Hello {{ first_name }}' : options.text,
      validity_seconds: 86_400,
      valid_until: options.validUntil === undefined ? now + 86_400_000 : options.validUntil,
      target_count: options.recipients.length,
      excluded_count: 0,
      exclusions: '{}',
      created_at: now,
      updated_at: now,
      started_at: now,
      affinity: options.affinity ?? null,
      priority: options.priority ?? 5,
      weight: options.weight ?? 1,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const deliveryId = Number(delivery.id);
  const logIds: number[] = [];
  const chunk = 500;
  for (let i = 0; i < options.recipients.length; i += chunk) {
    const rows = options.recipients.slice(i, i + chunk).map((recipient) => ({
      delivery_id: deliveryId,
      recipient_id: null,
      email: recipient.email,
      domain: recipient.email.slice(recipient.email.lastIndexOf('@') + 1).toLowerCase(),
      data: JSON.stringify(recipient.data ?? {}),
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: options.nextAttemptAt ?? now,
      updated_at: now,
    }));
    const inserted = await db.insertInto('delivery_logs').values(rows).returning('id').execute();
    for (const row of inserted) logIds.push(Number(row.id));
  }
  return { deliveryId, logIds };
}
