import { createAddressPredicate } from '../../audience/address.ts';
import type { Clock } from '../../common/clock.ts';
import { preparationStore, prepareDelivery } from '../../delivery/preparation.ts';
import type { Store } from '../../store/database.ts';
import { createDelivery } from '../../delivery/delivery-store.ts';

// A list, its recipients and a delivery prepared from it by the real preparation: the starting point
// of a mid-sourcing push in tests and drills.

export async function seedPreparedDelivery(
  store: Store,
  options: {
    name: string;
    recipients: ReadonlyArray<{ email: string; data?: Record<string, unknown> }>;
    validitySeconds: number;
    clock: Clock;
  },
): Promise<{ deliveryId: number; prepared: number }> {
  const now = options.clock.now();
  const list = await store.db
    .insertInto('lists')
    .values({ name: options.name, created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  for (let i = 0; i < options.recipients.length; i += 1_000) {
    const rows = options.recipients.slice(i, i + 1_000).map((recipient) => ({
      list_id: Number(list.id),
      email: recipient.email,
      domain: recipient.email.slice(recipient.email.indexOf('@') + 1),
      data: JSON.stringify(recipient.data ?? {}),
      created_at: now,
      updated_at: now,
    }));
    await store.db.insertInto('recipients').values(rows).execute();
  }
  const delivery = await createDelivery(
    store,
    {
      name: options.name,
      fromAddress: 'news@brand.test',
      fromName: 'Brand',
      replyTo: null,
      subject: 'Hello {{ first_name }}',
      html: '<p>Hello {{ first_name }}</p>',
      text: 'Hello {{ first_name }}',
      listName: options.name,
      validityHours: options.validitySeconds / 3600,
      affinity: null,
      scheduledAt: null,
    },
    { validityHours: 1 },
    now,
  );
  const outcome = await prepareDelivery(preparationStore(store), delivery.id, {
    batchSize: 1_000,
    clock: options.clock,
    isValidAddress: createAddressPredicate(),
  });
  if (outcome.kind === 'failed') throw new Error(`seed preparation failed: ${outcome.error}`);
  return { deliveryId: delivery.id, prepared: outcome.counts.prepared };
}

/** A delivery prepared for `count` recipients `<name><i>@accept.test` (a domain the simulator accepts), valid an hour. */
export function seedNumberedDelivery(
  store: Store,
  name: string,
  count: number,
  clock: Clock,
): Promise<{ deliveryId: number; prepared: number }> {
  const recipients = Array.from({ length: count }, (_, i) => ({
    email: `${name}${i}@accept.test`,
    data: { first_name: `R${i}` },
  }));
  return seedPreparedDelivery(store, { name, recipients, validitySeconds: 3600, clock });
}
