import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../common/logger.ts';
import { maskUrl } from '../common/mask-url.ts';
import {
  connectionPollMs,
  newLeaseId,
  type ConnectionGrant,
  type MessageGrant,
  type RateLimit,
  type ThrottleBackend,
  type ThrottleSnapshot,
} from './throttle.ts';

// Shared throttle: every MTA process, on one machine or several, pointing at one Redis respects
// one global limit. Each decision is one Lua script (atomic on the server, sent by EVALSHA via
// ioredis defineCommand), so a grant costs one round trip; concurrent calls are auto-pipelined.
// Connection leases are sorted-set members scored by their expiry: a crashed process's leases
// simply expire. Keys carry a TTL, so abandoned paths disappear by themselves.
//
// Fair share of a path's connections between nodes: a lease id starts with its node (`owner|…`),
// and a node refused a lease writes itself as a waiter (a second sorted set, entries live 3 polls).
// While another node waits, a node that already holds its share (limit / nodes holding or waiting)
// is refused new leases, so the slots its connections free at rotation (maxMessagesPerConnection)
// or at the end go to the waiting node instead of back to the node that took them all first.

export interface RedisThrottleOptions {
  url: string;
  /** Namespace of every key (default `herald:shaping:`); tests use one per run. */
  keyPrefix?: string;
  /**
   * `redis` (default): decisions use the Redis server clock, so machines with skewed clocks still
   * share one schedule. `caller`: use the `now` passed in (tests with an injected clock).
   */
  timeSource?: 'redis' | 'caller';
  redisOptions?: RedisOptions;
  /** This MTA node's id: the owner of its connection leases (fair share between nodes). No '|'. */
  owner?: string;
  /**
   * A command unanswered this long fails (default 5 s). Without it a Redis that vanishes from the
   * network (no reset: a partition, a dead host) left every call waiting for as long as the kernel
   * kept the socket: the MTA sent nothing, logged nothing and could not stop.
   */
  commandTimeoutMs?: number;
  /** Where an unreachable Redis, and its return, are reported (once per outage). */
  logger?: Logger;
}

const defaultCommandTimeoutMs = 5_000;

// ARGV[1] is now in ms, or -1 to read the server clock.
const nowPrelude = `
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

// Mirrors takePermits() in throttle.ts. ARGV: now, interval ms, burst, count.
const acquireMessagesScript = `${nowPrelude}
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local capacity = math.floor(burst - (tat - now) / interval + 1e-9)
if capacity < 0 then capacity = 0 end
local granted = math.min(want, capacity)
local nextTat = tat + granted * interval
if granted > 0 then
  redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now) + 1000)
end
local retry = 0
if granted < want then
  retry = math.ceil(nextTat + interval - burst * interval - now)
  if retry < 1 then retry = 1 end
end
return {granted, retry}
`;

// KEYS: leases, waiters. ARGV: now, limit, lease ms, lease id, poll ms, owner ('' = no fair share).
const acquireConnectionScript = `${nowPrelude}
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local poll = tonumber(ARGV[5])
local owner = ARGV[6]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local open = redis.call('ZCARD', KEYS[1])
if open < limit then
  if owner ~= '' then
    local nodes = {[owner] = true}
    local count = 1
    local others = 0
    for _, waiter in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
      if waiter ~= owner then
        others = others + 1
        if not nodes[waiter] then nodes[waiter] = true; count = count + 1 end
      end
    end
    if others > 0 then
      local mine = 0
      for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
        local holder = string.match(id, '^(.*)|')
        if holder == owner then mine = mine + 1 end
        if holder and not nodes[holder] then nodes[holder] = true; count = count + 1 end
      end
      if mine >= math.max(1, math.floor(limit / count)) then return {0, open, poll} end
    end
    redis.call('ZREM', KEYS[2], owner)
  end
  redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
  if redis.call('PTTL', KEYS[1]) < lease + 1000 then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
  return {1, open + 1, 0}
end
if owner ~= '' then
  redis.call('ZADD', KEYS[2], now + 3 * poll, owner)
  redis.call('PEXPIRE', KEYS[2], 3 * poll + 1000)
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local retry = math.ceil(tonumber(first[2]) - now)
if retry > poll then retry = poll end
if retry < 1 then retry = 1 end
return {0, open, retry}
`;

// ARGV: now, lease ms, lease id.
const renewConnectionScript = `${nowPrelude}
local lease = tonumber(ARGV[2])
local expires = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not expires or tonumber(expires) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
if redis.call('PTTL', KEYS[1]) < lease + 1000 then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
return 1
`;

interface ShapingCommands {
  heraldAcquireMessages(
    key: string,
    now: number,
    interval: number,
    burst: number,
    count: number,
  ): Promise<[number, number]>;
  heraldAcquireConnection(
    key: string,
    waitersKey: string,
    now: number,
    limit: number,
    leaseMs: number,
    leaseId: string,
    pollMs: number,
    owner: string,
  ): Promise<[number, number, number]>;
  heraldRenewConnection(key: string, now: number, leaseMs: number, leaseId: string): Promise<number>;
}

export function createRedisThrottle(options: RedisThrottleOptions): ThrottleBackend {
  const prefix = options.keyPrefix ?? 'herald:shaping:';
  const callerTime = options.timeSource === 'caller';
  const owner = options.owner?.replaceAll('|', '_') ?? '';
  const commandTimeoutMs = options.commandTimeoutMs ?? defaultCommandTimeoutMs;
  const redis = new Redis(options.url, {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 2,
    lazyConnect: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1_000),
    ...options.redisOptions,
  });
  // Callers treat a failed decision as "wait and ask again" (nothing is sent past the limits), so
  // the outage itself is reported here: once when it starts, once when Redis answers again.
  let failing = false;
  const where = maskUrl(options.url);
  const failed = (error: unknown) => {
    if (failing) return;
    failing = true;
    options.logger?.warn(
      { err: error, event: 'shaping.redis_unreachable', redis: where },
      `shaping: Redis at ${where} does not answer (${(error as Error).message}): paths wait for their connection leases and message permits until it does`,
    );
  };
  const answered = () => {
    if (!failing) return;
    failing = false;
    options.logger?.info(
      { event: 'shaping.redis_reachable', redis: where },
      `shaping: Redis at ${where} answers again`,
    );
  };
  // ioredis prints an unlistened 'error' to the console on every reconnection attempt.
  redis.on('error', failed);
  const watch = <T>(call: Promise<T>): Promise<T> =>
    call.then(
      (value) => {
        answered();
        return value;
      },
      (error: unknown) => {
        failed(error);
        throw error;
      },
    );
  redis.defineCommand('heraldAcquireMessages', { numberOfKeys: 1, lua: acquireMessagesScript });
  redis.defineCommand('heraldAcquireConnection', { numberOfKeys: 2, lua: acquireConnectionScript });
  redis.defineCommand('heraldRenewConnection', { numberOfKeys: 1, lua: renewConnectionScript });
  const commands = redis as unknown as Redis & ShapingCommands;
  const time = (now: number) => (callerTime ? now : -1);
  const connectionKey = (key: string) => `${prefix}c:${key}`;
  const rateKey = (key: string) => `${prefix}r:${key}`;

  return {
    kind: 'redis',
    async acquireConnection(key, limit, leaseMs, now): Promise<ConnectionGrant> {
      const leaseId = owner ? `${owner}|${newLeaseId()}` : newLeaseId();
      const [granted, open, retryInMs] = await watch(
        commands.heraldAcquireConnection(
          connectionKey(key),
          `${prefix}w:${key}`,
          time(now),
          limit,
          leaseMs,
          leaseId,
          connectionPollMs,
          owner,
        ),
      ).catch((error: unknown) => {
        // No answer is not no grant: a request held by a slow or partitioned Redis runs when it
        // gets there, and its lease, held by nobody, took a slot until it expired (leaseMs). The
        // removal goes after it on the same connection, so it is undone as soon as it is done.
        redis.zrem(connectionKey(key), leaseId).catch(() => undefined);
        throw error;
      });
      return granted === 1 ? { granted: true, leaseId, open } : { granted: false, open, retryInMs };
    },
    async renewConnection(key, leaseId, leaseMs, now) {
      return (await watch(commands.heraldRenewConnection(connectionKey(key), time(now), leaseMs, leaseId))) === 1;
    },
    async releaseConnection(key, leaseId) {
      await watch(redis.zrem(connectionKey(key), leaseId));
    },
    async acquireMessages(key, limit: RateLimit, count, now): Promise<MessageGrant> {
      const [granted, retryInMs] = await watch(
        commands.heraldAcquireMessages(rateKey(key), time(now), limit.periodMs / limit.perPeriod, limit.burst, count),
      );
      return { granted, retryInMs };
    },
    async snapshot(now): Promise<ThrottleSnapshot> {
      const serverNow = callerTime ? now : await serverTime(redis);
      const snapshot: ThrottleSnapshot = { connections: {}, rates: {} };
      // One round trip per batch of keys, not per key: 50,000 small MX hosts are 50,000 rate keys,
      // read by every MTA node every statsIntervalMs.
      for (const batch of batches(await scanKeys(redis, `${prefix}c:*`))) {
        const pipeline = redis.pipeline();
        for (const key of batch) pipeline.zcount(key, `(${serverNow}`, '+inf');
        const counts = (await pipeline.exec()) ?? [];
        batch.forEach((key, at) => {
          const [error, open] = counts[at] ?? [null, 0];
          if (error) throw error;
          if (Number(open) > 0) snapshot.connections[key.slice(prefix.length + 2)] = Number(open);
        });
      }
      for (const batch of batches(await scanKeys(redis, `${prefix}r:*`))) {
        const values = await redis.mget(...batch);
        batch.forEach((key, at) => {
          const value = values[at];
          if (value !== null && value !== undefined && Number(value) > serverNow)
            snapshot.rates[key.slice(prefix.length + 2)] = { bookedUntil: Number(value) };
        });
      }
      return snapshot;
    },
    async close() {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

async function serverTime(redis: Redis): Promise<number> {
  const [seconds, micros] = await redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

const snapshotBatchKeys = 500;

function batches(keys: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let at = 0; at < keys.length; at += snapshotBatchKeys) out.push(keys.slice(at, at + snapshotBatchKeys));
  return out;
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0' && keys.length < 100_000);
  return keys;
}
