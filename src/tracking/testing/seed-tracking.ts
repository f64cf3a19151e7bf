import { createHeraldMetrics } from '../../metrics/registry.ts';
import { manualClock, type Clock } from '../../common/clock.ts';
import type { Herald } from '../../main.ts';
import { parseConfig } from '../../config/load.ts';
import { silentLogger } from '../../common/logger.ts';
import { preparationStore, prepareDelivery } from '../../delivery/preparation.ts';
import type { Store } from '../../store/database.ts';
import { createDelivery } from '../../delivery/delivery-store.ts';

// For tests and the benchmark: a prepared delivery whose logs are all marked sent, ready to be
// clicked. Goes through the real preparation so tracking_links are what production stores.

export interface SeededDelivery {
  deliveryId: number;
  logs: Array<{ id: number; email: string }>;
}

export async function seedTrackedDelivery(
  store: Store,
  options: {
    name: string;
    html: string;
    text?: string | null;
    recipients: Array<{ email: string; data?: Record<string, string> }>;
    now: number;
    /**
     * Writes the recipients' data into the logs only after preparation (which checks it with neutral
     * values of the same names): hostile data preparation would refuse, as an execution instance
     * receives it in a part another instance prepared — for tests of the tracking server's own defences.
     */
    dataAfterPreparation?: boolean;
  },
): Promise<SeededDelivery> {
  const list = await store.db
    .insertInto('lists')
    .values({ name: options.name, created_at: options.now })
    .returning('id')
    .executeTakeFirstOrThrow();
  for (let i = 0; i < options.recipients.length; i += 1_000) {
    await store.db
      .insertInto('recipients')
      .values(
        options.recipients.slice(i, i + 1_000).map((r) => ({
          list_id: list.id,
          email: r.email,
          domain: r.email.slice(r.email.lastIndexOf('@') + 1),
          data: JSON.stringify(options.dataAfterPreparation ? neutral(r.data ?? {}) : (r.data ?? {})),
          created_at: options.now,
          updated_at: options.now,
        })),
      )
      .execute();
  }
  const delivery = await createDelivery(
    store,
    {
      name: options.name,
      fromAddress: 'news@herald.test',
      fromName: null,
      replyTo: null,
      subject: 'Hello',
      html: options.html,
      text: options.text ?? null,
      listName: options.name,
      validityHours: 1,
      affinity: null,
      scheduledAt: null,
    },
    { validityHours: 1 },
    options.now,
  );
  const prepared = await prepareDelivery(preparationStore(store), delivery.id, {
    batchSize: 1_000,
    clock: manualClock(options.now),
    isValidAddress: () => true,
  });
  if (prepared.kind !== 'prepared') throw new Error(`seed preparation failed: ${prepared.error}`);
  if (options.dataAfterPreparation)
    for (const r of options.recipients)
      await store.db
        .updateTable('delivery_logs')
        .set({ data: JSON.stringify(r.data ?? {}) })
        .where('delivery_id', '=', delivery.id)
        .where('email', '=', r.email)
        .execute();
  await store.db
    .updateTable('delivery_logs')
    .set({ status: 'sent', sent_at: options.now, updated_at: options.now })
    .where('delivery_id', '=', delivery.id)
    .execute();
  const logs = await store.db
    .selectFrom('delivery_logs')
    .select(['id', 'email'])
    .where('delivery_id', '=', delivery.id)
    .orderBy('id')
    .execute();
  return { deliveryId: delivery.id, logs: logs.map((l) => ({ id: Number(l.id), email: l.email })) };
}

/** The same names, each with a value any template renders. */
function neutral(data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.keys(data).map((name) => [name, 'x']));
}

/** A Herald over an already open store (tests, bench), with a config built from `config`. */
export function heraldOver(store: Store, config: Record<string, unknown>, clock: Clock = manualClock()): Herald {
  return {
    config: parseConfig({ ...config, database: { url: 'sqlite::memory:' } }, 'test'),
    store,
    logger: silentLogger,
    clock,
    nodeId: 'test-node',
    metrics: createHeraldMetrics(),
    close: async () => {},
  };
}
