import type { DeliveryDefinition } from '../../src/delivery/definition.ts';
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
