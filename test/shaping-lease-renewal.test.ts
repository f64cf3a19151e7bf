import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomId } from '../src/common/ids.ts';
import { configSchema } from '../src/config/schema.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, type DialectContext, type TestDatabase } from './support/databases.ts';
import { redisSkipReason, testRedisUrl } from './support/redis.ts';
import { createShapedMta } from './support/shaped-mta.ts';
import { waitFor } from './support/wait.ts';

// A connection lease on a path is renewed while its session is open, not only between
// transactions: a DATA answer slower than shaping.connectionLeaseMs kept the session open on a
// lease that had run out, and another MTA sharing the Redis throttle was let in beside it (two
// sessions on a maxConnections: 1 path). And a lease Redis no longer holds (a restart without its
// data) ends its session after the transaction, so the next one is counted again.

const unavailable = redisSkipReason('the connection lease renewal tests');

let simulator: Simulator;
let database: TestDatabase;
let store: Store;
beforeAll(async () => {
  if (unavailable) return;
  simulator = await startSimulator({ trackRecipients: false });
  ({ store, database } = await openMigratedDatabase('sqlite'));
});
afterAll(async () => {
  if (unavailable) return;
  await simulator.close();
  await store.close();
  await database.drop();
});

/** One connection at a time to `mask`'s MX host, and `rate` (no limit by default). */
function rulesFile(mask: string, rate = 'maxMessagesPerHour: 100000000'): string {
  return `rules:
  - name: one-at-a-time
    mask: "${mask}"
    maxConnections: 1
    ${rate}
  - name: generic
    mask: "*"
    maxConnections: 10
    maxMessagesPerHour: 100000000
`;
}

/** One MTA node sharing the test's Redis throttle under `prefix`, with 1 s connection leases. */
async function shapedMta(
  nodeId: string,
  prefix: string,
  rules: string,
  options: { replyTimeoutMs?: number; ratePeriodMs?: number } = {},
) {
  const context: DialectContext = { dialect: 'sqlite', store: () => store, url: () => database.url };
  const mta = configSchema.parse({
    mta: {
      heloName: 'mta.herald.test',
      routes: simulator.routes,
      resolverServers: [simulator.dnsServer],
      commandTimeoutMs: options.replyTimeoutMs ?? 10_000,
      dataTimeoutMs: options.replyTimeoutMs ?? 10_000,
      retryDelaysSeconds: [600],
      pollIntervalMs: 50,
    },
  }).mta;
  const file = join(mkdtempSync(join(tmpdir(), 'herald-lease-')), 'rules.yaml');
  writeFileSync(file, rules);
  const parts = await createShapedMta(context, {
    mta,
    nodeId,
    shaping: {
      rulesFiles: [file],
      redisUrl: testRedisUrl,
      redisKeyPrefix: prefix,
      connectionLeaseMs: 1_000,
      ...(options.ratePeriodMs && { ratePeriodMs: options.ratePeriodMs }),
    },
  });
  parts.shaping.start();
  await parts.mta.start();
  return {
    stop: async () => {
      await parts.mta.stop();
      await parts.shaping.stop();
    },
  };
}

async function statusesOf(deliveryId: number): Promise<string[]> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['status', 'attempts'])
    .where('delivery_id', '=', deliveryId)
    .execute();
  return rows.map((row) => (Number(row.attempts) > 0 ? 'attempted' : row.status));
}

describe.skipIf(unavailable !== undefined)('connection leases while a session is open', () => {
  it('a DATA answer slower than the lease keeps its slot: a second MTA waits (one session at a time)', async () => {
    const prefix = `herald:test:${randomId(8)}:`;
    const rules = rulesFile('mx.stall-data.test');
    const sink = simulator.sinks.get('mx.stall-data.test')!;
    const before = sink.stats();
    // The host never answers DATA: each transaction lasts the reply timeout, 4 leases long.
    const first = await seedDelivery(store.db, {
      now: Date.now(),
      recipients: [{ email: 'a@stall-data.test', data: { first_name: 'Pat' } }],
    });
    const nodeA = await shapedMta(`lease-a-${randomId(4)}`, prefix, rules, { replyTimeoutMs: 4_000 });
    const nodes = [nodeA];
    try {
      await waitFor(() => sink.stats().openSessions === 1, 'the first MTA in its stalled DATA', 20_000);
      const second = await seedDelivery(store.db, {
        now: Date.now(),
        recipients: [{ email: 'b@stall-data.test', data: { first_name: 'Pat' } }],
      });
      nodes.push(await shapedMta(`lease-b-${randomId(4)}`, prefix, rules, { replyTimeoutMs: 4_000 }));
      // Until the first transaction ends (its data timeout), the second MTA is kept out; then it gets the slot.
      await waitFor(
        async () => (await statusesOf(first.deliveryId)).includes('attempted'),
        'the first attempt',
        30_000,
      );
      await waitFor(async () => (await statusesOf(second.deliveryId)).includes('attempted'), 'the second', 30_000);
    } finally {
      for (const node of nodes) await node.stop();
    }
    expect(sink.stats().connections - before.connections).toBeGreaterThanOrEqual(2);
    expect(sink.stats().maxConcurrentSessions).toBe(1);
  });

  it('a lease Redis lost (restart without its data) ends its session after the transaction; the next takes a new lease', async () => {
    const prefix = `herald:test:${randomId(8)}:`;
    // 20 messages a second (a rate period of 1 s) on one connection: a session open for ~2 s.
    const paced = rulesFile('gmail-smtp-in.l.google.test', 'maxMessagesPerHour: 20\n    burst: 1');
    const sink = simulator.sinks.get('gmail-smtp-in.l.google.test')!;
    const before = sink.stats();
    const count = 40;
    const recipients = Array.from({ length: count }, (_, i) => ({
      email: `lease${i}@gmail.test`,
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(store.db, { now: Date.now(), recipients });
    const redis = new Redis(testRedisUrl);
    const node = await shapedMta(`lease-c-${randomId(4)}`, prefix, paced, { ratePeriodMs: 1_000 });
    try {
      await waitFor(() => sink.stats().messagesAccepted - before.messagesAccepted >= 3, 'the session sending', 20_000);
      expect(sink.stats().connections - before.connections).toBe(1);
      // What a Redis restarted without its data holds: no lease.
      const leases = await redis.keys(`${prefix}c:*`);
      expect(leases.length).toBe(1);
      await redis.del(...leases);
      await waitFor(
        async () => (await statusesOf(deliveryId)).filter((status) => status === 'attempted').length === count,
        'every message sent',
        30_000,
      );
    } finally {
      await node.stop();
      redis.disconnect();
    }
    expect(sink.stats().connections - before.connections).toBeGreaterThanOrEqual(2);
  });
});
