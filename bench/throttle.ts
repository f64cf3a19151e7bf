// Throttle engine throughput: permits granted per second by the memory and Redis backends, one
// permit per call and batched, with one client and with two independent clients sharing a key.
// Prints figures; never passes or fails on time. Target (issue): Redis ≥ 20,000 permits/s.
//
//   node --import tsx bench/throttle.ts            (HERALD_BENCH_REDIS_URL, default redis://127.0.0.1:6379)

import { Redis } from 'ioredis';
import { randomId } from '../src/common/ids.ts';
import { createMemoryThrottle } from '../src/shaping/memory-throttle.ts';
import { createRedisThrottle } from '../src/shaping/redis-throttle.ts';
import { rateLimit, type ThrottleBackend } from '../src/shaping/throttle.ts';

const durationMs = Number(process.env.HERALD_BENCH_MS ?? 1_500);
const redisUrl = process.env.HERALD_BENCH_REDIS_URL ?? process.env.HERALD_REDIS_URL ?? 'redis://127.0.0.1:6379';
// A limit far above what any backend can grant, so the figure is the engine's cost, not the limit.
const unlimited = rateLimit(1e12, 3_600_000, 1e9);

interface Scenario {
  name: string;
  clients: ThrottleBackend[];
  /** Permits asked per call. */
  batch: number;
  /** Calls in flight per client (Redis auto-pipelines concurrent calls into one write). */
  concurrency: number;
}

async function run(scenario: Scenario): Promise<number> {
  const key = `bench-${randomId(4)}`;
  let permits = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async (client: ThrottleBackend) => {
    while (performance.now() < deadline) {
      const grant = await client.acquireMessages(key, unlimited, scenario.batch, Date.now());
      permits += grant.granted;
    }
  };
  await Promise.all(
    scenario.clients.flatMap((client) => Array.from({ length: scenario.concurrency }, () => worker(client))),
  );
  return permits / ((performance.now() - started) / 1_000);
}

async function redisReachable(): Promise<boolean> {
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

async function main(): Promise<void> {
  const memory = createMemoryThrottle();
  const scenarios: Scenario[] = [
    { name: 'memory, 1 permit/call', clients: [memory], batch: 1, concurrency: 1 },
    { name: 'memory, 50 permits/call', clients: [memory], batch: 50, concurrency: 1 },
  ];
  const prefix = `herald:bench:${randomId(4)}:`;
  const redisClients: ThrottleBackend[] = [];
  if (await redisReachable()) {
    const a = createRedisThrottle({ url: redisUrl, keyPrefix: prefix });
    const b = createRedisThrottle({ url: redisUrl, keyPrefix: prefix });
    redisClients.push(a, b);
    scenarios.push(
      { name: 'redis, 1 client, 1 permit/call, sequential', clients: [a], batch: 1, concurrency: 1 },
      { name: 'redis, 1 client, 1 permit/call, 64 in flight', clients: [a], batch: 1, concurrency: 64 },
      { name: 'redis, 2 clients, 1 permit/call, 64 in flight each', clients: [a, b], batch: 1, concurrency: 64 },
      { name: 'redis, 1 client, 50 permits/call, 8 in flight', clients: [a], batch: 50, concurrency: 8 },
      { name: 'redis, 2 clients, 50 permits/call, 8 in flight each', clients: [a, b], batch: 50, concurrency: 8 },
    );
  } else {
    console.log(`redis not reachable at ${redisUrl}: Redis figures skipped`);
  }
  console.log(`throttle permits/s (${durationMs} ms per scenario)`);
  for (const scenario of scenarios) {
    const rate = await run(scenario);
    console.log(`  ${scenario.name.padEnd(52)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} permits/s`);
  }
  if (redisClients.length > 0) {
    const cleaner = new Redis(redisUrl);
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
    await cleaner.quit();
    await Promise.all(redisClients.map((c) => c.close()));
  }
}

await main();
