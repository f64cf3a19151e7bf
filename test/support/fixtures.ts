import { type DeliveryDefinition, definitionFromJson } from '../../src/delivery/definition.ts';
import { createDelivery } from '../../src/delivery/delivery-store.ts';
import { prepareConfigured } from '../../src/delivery/operator-actions.ts';
import { preparationStore, prepareDelivery } from '../../src/delivery/preparation.ts';
import type { Clock } from '../../src/common/clock.ts';
import { silentLogger } from '../../src/common/logger.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createWorkflowEngine } from '../../src/workflows/engine.ts';
import { manualTicker } from '../../src/workflows/ticker.ts';
import type { Herald } from '../../src/main.ts';
import { seedDelivery } from '../../src/mta/testing/seed-delivery.ts';
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

/**
 * A list `list` of `count` recipients r0@accept.test, r1@… and a delivery of deliveryDefinition(`overrides`)
 * to it, prepared by the real preparation at `clock`'s time (store-level tests, no Herald); its id.
 */
export async function preparedOnStore(
  store: Store,
  clock: Clock,
  list: string,
  count: number,
  overrides: Partial<DeliveryDefinition> = {},
): Promise<number> {
  await insertList(
    store,
    list,
    Array.from({ length: count }, (_, i) => ({ email: `r${i}@accept.test` })),
  );
  const { id } = await createDelivery(
    store,
    deliveryDefinition({ listName: list, ...overrides }),
    { validityHours: 24 },
    clock.now(),
  );
  const outcome = await prepareDelivery(preparationStore(store), id, {
    batchSize: 100,
    clock,
    isValidAddress: () => true,
  });
  if (outcome.kind !== 'prepared') throw new Error(`preparation of delivery ${id} failed: ${outcome.error}`);
  return id;
}

/** Runs the technical workflow `name` once at `clock`'s time, with the default configuration. */
export function runWorkflowOnce(store: Store, clock: Clock, name: string) {
  const engine = createWorkflowEngine({
    store,
    config: parseConfig({}, 'test'),
    clock,
    logger: silentLogger,
    nodeId: 'node-a',
    ticker: manualTicker,
  });
  return engine.runNow(name);
}

/** A prepared delivery of one recipient: each change of its state writes a delivery.state webhook event. */
export async function onePreparedDelivery(herald: Pick<Herald, 'store' | 'clock'>, email: string): Promise<number> {
  const seeded = await seedDelivery(herald.store.db, {
    now: herald.clock.now(),
    state: 'prepared',
    recipients: [{ email }],
  });
  return seeded.deliveryId;
}
