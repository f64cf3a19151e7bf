import { Redis } from 'ioredis';

// The Redis the tests use (HERALD_TEST_REDIS_URL or 127.0.0.1:6379). In CI an unreachable Redis
// fails the run; elsewhere the tests that need it are skipped with the reason printed.

export const testRedisUrl = process.env.HERALD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function probeRedis(): Promise<string | undefined> {
  const client = new Redis(testRedisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return undefined;
  } catch (error) {
    return `Redis not reachable at ${testRedisUrl}: ${(error as Error).message}`;
  } finally {
    client.disconnect();
  }
}

const unreachable = await probeRedis();

/**
 * Why `what` (the tests of a file) cannot run, or undefined when Redis answers: throws in CI,
 * where the Redis tests must run, and prints the reason elsewhere.
 */
export function redisSkipReason(what: string, otherReason?: string): string | undefined {
  const reason = unreachable ?? otherReason;
  if (!reason) return undefined;
  if (process.env.CI) throw new Error(`CI requires Redis and PostgreSQL for ${what}: ${reason}`);
  console.warn(`skipping ${what}: ${reason}`);
  return reason;
}
