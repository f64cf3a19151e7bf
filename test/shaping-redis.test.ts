import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { randomId } from '../src/common/ids.ts';
import { createRedisThrottle } from '../src/shaping/redis-throttle.ts';
import { rateLimit, type ThrottleBackend } from '../src/shaping/throttle.ts';
import { manualClock } from '../src/common/clock.ts';
import { RulesHolder } from '../src/shaping/compiled-rules.ts';
import { loadRuleTexts } from '../src/shaping/rule-loader.ts';
import { Shaper } from '../src/shaping/shaper.ts';
import { createLogger } from '../src/common/logger.ts';
import { redisSkipReason, testRedisUrl as redisUrl } from './support/redis.ts';
import { startCuttableProxy, type CuttableProxy } from './support/cuttable-proxy.ts';

// Real Redis (test/support/redis.ts), one key prefix per run.
const unavailable = redisSkipReason('Redis throttle tests');

const prefix = `herald:test:${process.pid}:${randomId(4)}:`;
const opened: ThrottleBackend[] = [];
const proxies: CuttableProxy[] = [];

/** A logger whose records the test reads back. */
function recordingLogger() {
  const records: Array<{ level: number; event?: string; msg: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      records.push(JSON.parse(chunk.toString()));
      callback();
    },
  });
  return { logger: createLogger({ destination, level: 'info' }), records };
}

/** A Shaper with one generic rule over a Redis reached through a proxy the test can cut. */
async function shaperBehindProxy(nodeId: string, clockMs: number) {
  const loaded = await loadRuleTexts([
    {
      file: 'down.yaml',
      text: 'rules:\n  - { name: generic, mask: "*", maxConnections: 2, maxMessagesPerHour: 3600 }\n',
    },
  ]);
  if (!loaded.ok) throw new Error('pack must load');
  const { throttle, proxy } = await backendBehindProxy({ commandTimeoutMs: 300 });
  const defaults = { connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, dataTimeoutMs: 1_000, opportunisticTls: true };
  const shaper = new Shaper({
    rules: new RulesHolder(loaded.rules),
    backend: throttle,
    clock: manualClock(clockMs),
    defaults,
    nodeId,
  });
  return { shaper, proxy };
}

/** A throttle reaching Redis through a proxy the test can cut. */
async function backendBehindProxy(options: { commandTimeoutMs?: number; logger?: ReturnType<typeof createLogger> }) {
  const target = new URL(redisUrl);
  const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 6379) });
  proxies.push(proxy);
  const url = new URL(redisUrl);
  url.hostname = proxy.host;
  url.port = String(proxy.port);
  const throttle = createRedisThrottle({ url: url.toString(), keyPrefix: prefix, timeSource: 'caller', ...options });
  opened.push(throttle);
  return { throttle, proxy };
}

function backend(timeSource: 'caller' | 'redis' = 'caller', owner?: string): ThrottleBackend {
  const throttle = createRedisThrottle({ url: redisUrl, keyPrefix: prefix, timeSource, ...(owner && { owner }) });
  opened.push(throttle);
  return throttle;
}

afterAll(async () => {
  if (unavailable) return;
  const cleaner = new Redis(redisUrl);
  const keys = await cleaner.keys(`${prefix}*`);
  if (keys.length > 0) await cleaner.del(...keys);
  await cleaner.quit();
  await Promise.all(opened.map((t) => t.close()));
  await Promise.all(proxies.map((p) => p.close()));
});

describe.skipIf(unavailable !== undefined)('Redis throttle', () => {
  it('computes the same smoothed grants as the memory backend', async () => {
    const throttle = backend();
    const limit = rateLimit(36_000, 3_600_000, 5);
    expect(await throttle.acquireMessages('gcra', limit, 8, 1_000_000)).toEqual({ granted: 5, retryInMs: 100 });
    expect(await throttle.acquireMessages('gcra', limit, 1, 1_000_050)).toEqual({ granted: 0, retryInMs: 50 });
    expect(await throttle.acquireMessages('gcra', limit, 1, 1_000_100)).toEqual({ granted: 1, retryInMs: 0 });
    const snapshot = await throttle.snapshot(1_000_100);
    expect(snapshot.rates.gcra).toEqual({ bookedUntil: 1_000_600 });
    // A tiny interval at an epoch-sized time (10^8 per hour, burst 1) is granted, as in memory.
    const now = Date.UTC(2026, 11, 8);
    const tiny = rateLimit(100_000_000, 3_600_000, 1);
    expect((await throttle.acquireMessages('gcra-tiny', tiny, 5, now)).granted).toBe(1);
    expect((await throttle.acquireMessages('gcra-tiny', tiny, 5, now + 1)).granted).toBe(1);
  });

  it('reads the counters of a snapshot in batches, not one round trip per key (50,000 small MX hosts)', async () => {
    const ownPrefix = `${prefix}batches:`;
    const throttle = createRedisThrottle({ url: redisUrl, keyPrefix: ownPrefix, timeSource: 'caller' });
    opened.push(throttle);
    const now = 7_000_000;
    const keys = Array.from({ length: 1_200 }, (_, i) => `generic|id1|mx.company${i}.example`);
    await Promise.all(keys.map((key) => throttle.acquireMessages(key, rateLimit(1), 1, now)));
    const lease = await throttle.acquireConnection(`${keys[0]}|192.0.2.1`, 2, 60_000, now);
    expect(lease.granted).toBe(true);
    // What Redis is asked, from Redis itself: the commands naming this test's keys.
    const client = new Redis(redisUrl);
    const monitor = await client.monitor();
    const commands: string[] = [];
    const marker = `${ownPrefix}marker`;
    const markerSeen = new Promise<void>((resolve) =>
      monitor.on('monitor', (_time: string, args: string[]) => {
        if (args[1] === marker) resolve();
        else if (args.slice(1).some((arg) => arg.startsWith(ownPrefix))) commands.push(args[0]!.toLowerCase());
      }),
    );
    try {
      const snapshot = await throttle.snapshot(now);
      await client.get(marker);
      await markerSeen;
      expect(Object.keys(snapshot.rates)).toHaveLength(keys.length);
      expect(snapshot.rates[keys[7]!]?.bookedUntil).toBeGreaterThan(now);
      expect(snapshot.connections).toEqual({ [`${keys[0]}|192.0.2.1`]: 1 });
      expect(commands.filter((command) => command === 'get')).toHaveLength(0);
      expect(commands.filter((command) => command === 'mget')).toHaveLength(Math.ceil(keys.length / 500));
    } finally {
      client.disconnect();
      monitor.disconnect();
    }
  });

  it('shares a path between nodes: one holding every lease gives freed ones to a waiting node, up to half each', async () => {
    const a = backend('caller', 'node-a');
    const b = backend('caller', 'node-b');
    const now = 5_000_000;
    const leasesOfA: string[] = [];
    for (let i = 0; i < 4; i++) {
      const grant = await a.acquireConnection('fair', 4, 60_000, now);
      expect(grant.granted).toBe(true);
      if (grant.granted) leasesOfA.push(grant.leaseId);
    }
    // B is refused (full) and becomes a waiter.
    expect((await b.acquireConnection('fair', 4, 60_000, now + 1)).granted).toBe(false);
    // A's connection rotates: while B waits, A (3 held, share 4/2 = 2) may not take the slot back.
    await a.releaseConnection('fair', leasesOfA.pop()!);
    expect((await a.acquireConnection('fair', 4, 60_000, now + 2)).granted).toBe(false);
    expect((await b.acquireConnection('fair', 4, 60_000, now + 3)).granted).toBe(true);
    await a.releaseConnection('fair', leasesOfA.pop()!);
    expect((await b.acquireConnection('fair', 4, 60_000, now + 4)).granted).toBe(true);
    // Two each: B no longer waits, and nobody may exceed the limit.
    expect((await b.acquireConnection('fair', 4, 60_000, now + 5)).granted).toBe(false);
    // Once B's waiting entry is stale (3 polls), A gets a freed slot again.
    await a.releaseConnection('fair', leasesOfA.pop()!);
    expect((await a.acquireConnection('fair', 4, 60_000, now + 5_000)).granted).toBe(true);
  });

  it('two independent clients never exceed one connection limit together', async () => {
    const a = backend();
    const b = backend();
    const attempts = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).acquireConnection('conn', 5, 60_000, 5_000)),
    );
    const granted = attempts.filter((g) => g.granted);
    expect(granted).toHaveLength(5);
    expect(attempts.find((g) => !g.granted)).toMatchObject({ open: 5 });
    // Release from the other client: leases are shared state, not per connection.
    const first = granted[0]!;
    if (!first.granted) throw new Error('unreachable');
    await b.releaseConnection('conn', first.leaseId);
    expect((await a.acquireConnection('conn', 5, 60_000, 5_001)).granted).toBe(true);
    expect((await a.acquireConnection('conn', 5, 60_000, 5_001)).granted).toBe(false);
    expect((await b.snapshot(5_002)).connections.conn).toBe(5);
  });

  it('two independent clients share one hourly rate without exceeding it', async () => {
    const a = backend();
    const b = backend();
    const limit = rateLimit(7_200, 3_600_000, 4); // one per 500 ms, burst 4
    let granted = 0;
    // Ten simulated seconds, both clients asking concurrently for batches every 100 ms.
    for (let now = 0; now < 10_000; now += 100) {
      const [x, y] = await Promise.all([
        a.acquireMessages('shared-rate', limit, 3, now),
        b.acquireMessages('shared-rate', limit, 3, now),
      ]);
      granted += x.granted + y.granted;
    }
    // 10 s / 500 ms = 20 permits, plus the burst of 4 (minus the one already counted at t=0).
    expect(granted).toBeLessThanOrEqual(24);
    expect(granted).toBeGreaterThanOrEqual(22);
  });

  it('expires a crashed holder’s leases and renews live ones', async () => {
    const throttle = backend();
    const lease = await throttle.acquireConnection('crash', 1, 1_000, 10_000);
    if (!lease.granted) throw new Error('first lease must be granted');
    expect(await throttle.renewConnection('crash', lease.leaseId, 1_000, 10_900)).toBe(true);
    expect(await throttle.acquireConnection('crash', 1, 1_000, 11_500)).toMatchObject({ granted: false, open: 1 });
    expect((await throttle.acquireConnection('crash', 1, 1_000, 11_901)).granted).toBe(true);
    expect(await throttle.renewConnection('crash', lease.leaseId, 1_000, 11_950)).toBe(false);
  });

  it('uses the Redis server clock by default', async () => {
    const throttle = backend('redis');
    // One permit per 100 s after a burst of 2: the next permit is one interval, less the time between
    // the two calls, away. The time is measured around them (a loaded machine can spend well over the
    // 100 ms the test once allowed between two round trips to Redis).
    const intervalMs = 100_000;
    const limit = rateLimit(36, 3_600_000, 2);
    const startedAt = Date.now();
    // `now` is ignored: the server clock decides, so a wildly wrong caller clock changes nothing.
    expect((await throttle.acquireMessages('server-clock', limit, 5, 0)).granted).toBe(2);
    const denied = await throttle.acquireMessages('server-clock', limit, 1, 9e15);
    const elapsedMs = Date.now() - startedAt;
    expect(denied.granted).toBe(0);
    expect(denied.retryInMs).toBeGreaterThanOrEqual(intervalMs - elapsedMs);
    expect(denied.retryInMs).toBeLessThanOrEqual(intervalMs);
    const lease = await throttle.acquireConnection('server-conn', 1, 60_000, 0);
    expect(lease.granted).toBe(true);
    expect((await throttle.snapshot(0)).connections['server-conn']).toBe(1);
  });

  it('two shapers (two MTA processes) on one Redis respect one rule limit', async () => {
    const loaded = await loadRuleTexts([
      {
        file: 'two.yaml',
        text: 'rules:\n  - { name: tight, mask: "*.tight.test", shared: true, maxConnections: 3, maxMessagesPerHour: 3600, burst: 5 }\n  - { name: generic, mask: "*", maxConnections: 9, maxMessagesPerHour: 9000 }\n',
      },
    ]);
    if (!loaded.ok) throw new Error('pack must load');
    const clock = manualClock(50_000_000);
    const defaults = { connectTimeoutMs: 1_000, commandTimeoutMs: 1_000, dataTimeoutMs: 1_000, opportunisticTls: true };
    const make = (nodeId: string) =>
      new Shaper({ rules: new RulesHolder(loaded.rules), backend: backend(), clock, defaults, nodeId });
    const [one, two] = [make('a'), make('b')];
    // Different public ids, but the rule is shared: one pool of 3 sessions per MX IP, one rate.
    const paths = [1, 2].map((publicId) => ({ mxHost: 'mx.tight.test', mxIp: '192.0.2.50', publicId }));
    const decisions = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).acquireConnection(paths[i % 2]!)),
    );
    expect(decisions.filter((d) => d.kind === 'granted')).toHaveLength(3);
    const grants = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).acquireMessages(paths[i % 2]!, 2)),
    );
    expect(grants.reduce((sum, g) => sum + g.granted, 0)).toBe(5);
    clock.advance(10_000);
    const later = await Promise.all([one.acquireMessages(paths[0]!, 20), two.acquireMessages(paths[1]!, 20)]);
    expect(later[0]!.granted + later[1]!.granted).toBe(5);
  });

  it('a blackholed Redis fails decisions after the command timeout, says so once, and serves again when it returns', async () => {
    const { logger, records } = recordingLogger();
    const { throttle, proxy } = await backendBehindProxy({ commandTimeoutMs: 300, logger });
    const limit = rateLimit(3_600, 3_600_000, 10);
    expect((await throttle.acquireMessages('partition', limit, 2, 1_000)).granted).toBe(2);
    // Packets vanish: no reset, no error. The MTA's pool treats a failed decision as "wait and ask
    // again"; a decision that never settles stopped the path (and the MTA's stop) for the outage.
    proxy.blackhole();
    await expect(throttle.acquireMessages('partition', limit, 1, 1_001)).rejects.toThrow(/timed out/);
    await expect(throttle.acquireConnection('partition', 2, 60_000, 1_002)).rejects.toThrow(/timed out/);
    const unreachable = records.filter((r) => r.event === 'shaping.redis_unreachable');
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]!.msg).toContain('does not answer');
    proxy.resume();
    expect((await throttle.acquireMessages('partition', limit, 1, 1_003)).granted).toBe(1);
    expect(records.filter((r) => r.event === 'shaping.redis_reachable')).toHaveLength(1);
    proxy.blackhole();
    await throttle.close();
    proxy.resume();
  });

  it('a connection grant that timed out does not keep its slot when Redis answers again', async () => {
    const { throttle, proxy } = await backendBehindProxy({ commandTimeoutMs: 300 });
    proxy.blackhole();
    await expect(throttle.acquireConnection('lost-grant', 1, 600_000, 2_000)).rejects.toThrow(/timed out/);
    // The request was held, not lost: Redis runs it when the partition heals and leases a slot
    // nobody holds. The path's only slot stayed taken for the lease's 10 minutes.
    proxy.resume();
    expect(await throttle.acquireConnection('lost-grant', 1, 600_000, 2_001)).toMatchObject({ granted: true });
  });

  it('a session closing while Redis is down releases its lease without a rejection (the lease expires by itself)', async () => {
    const { shaper, proxy } = await shaperBehindProxy('down', 70_000_000);
    const decision = await shaper.acquireConnection({ mxHost: 'mx.down.test', mxIp: '192.0.2.60', publicId: 1 });
    if (decision.kind !== 'granted') throw new Error('the lease must be granted');
    // The pool calls release without waiting (void): a rejection there is an unhandled rejection,
    // which ends the process.
    proxy.refuse();
    await expect(shaper.releaseConnection(decision.lease)).resolves.toBeUndefined();
    proxy.resume();
  });

  it('while Redis is down the shaping snapshot is still taken (the node stays visible) and says why its shared counters are missing', async () => {
    const { shaper, proxy } = await shaperBehindProxy('silent-redis', 80_000_000);
    proxy.refuse();
    const snapshot = await shaper.snapshot();
    expect(snapshot.nodeId).toBe('silent-redis');
    expect(snapshot.throttle).toEqual({ connections: {}, rates: {} });
    expect(snapshot.throttleError).toMatch(/^redis throttle unreachable: /);
    proxy.resume();
    expect((await shaper.snapshot()).throttleError).toBeUndefined();
  });
});
