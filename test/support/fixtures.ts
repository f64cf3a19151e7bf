import { type DeliveryDefinition, definitionFromJson } from '../../src/delivery/definition.ts';
import { createDelivery } from '../../src/delivery/delivery-store.ts';
import { prepareConfigured } from '../../src/delivery/operator-actions.ts';
import type { Herald } from '../../src/main.ts';
import type { Store } from '../../src/store/database.ts';

/** Inserts a list with `count` recipients straight into the database (tests that are not about import). */
export async function insertList(
  store: Store,
  name: string,
  recipients: Array<{ email: string; data?: Record<string, string> }>,
): Promise<number> {
  const now = Date.now();
  const list = await store.db
    .insertInto('lists')
    .values({ name, created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  for (let i = 0; i < recipients.length; i += 1_000) {
    await store.db
      .insertInto('recipients')
      .values(
        recipients.slice(i, i + 1_000).map((r) => ({
          list_id: list.id,
          email: r.email,
          domain: r.email.slice(r.email.lastIndexOf('@') + 1),
          data: JSON.stringify(r.data ?? {}),
          created_at: now,
          updated_at: now,
        })),
      )
      .execute();
  }
  return list.id;
}

/** A valid delivery definition (list `spring`), with `overrides`. */
export function deliveryDefinition(overrides: Partial<DeliveryDefinition> = {}): DeliveryDefinition {
  return {
    name: 'Spring',
    fromAddress: 'news@herald.test',
    fromName: 'Herald News',
    replyTo: null,
    subject: 'Hello {{ first_name | default: "there" }}',
    html: '<p>Hi {{ first_name | default: "there" }}</p>',
    text: 'Hi {{ first_name | default: "there" }}',
    listName: 'spring',
    validityHours: null,
    affinity: null,
    scheduledAt: null,
    ...overrides,
  };
}

/**
 * A list `list` of `count` recipients r0@example.test, r1@… and a delivery of `definition` (JSON as
 * the API takes it) to it, prepared the way an operator prepares it; the delivery's id.
 */
export async function preparedDelivery(
  herald: Herald,
  list: string,
  count: number,
  definition: Record<string, unknown>,
): Promise<number> {
  await insertList(
    herald.store,
    list,
    Array.from({ length: count }, (_, i) => ({ email: `r${i}@example.test` })),
  );
  const row = await createDelivery(
    herald.store,
    definitionFromJson({ ...definition, list }),
    { validityHours: 24 },
    herald.clock.now(),
  );
  await prepareConfigured(herald, row.id);
  return row.id;
}
