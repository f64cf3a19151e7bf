import { readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { ensurePlatformCollector } from '../src/metrics/server.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createTestDatabase, type TestDatabase } from './support/databases.ts';

// herald_database_size_bytes on SQLite: the gauge read `herald db status` once a minute, which reads
// every page of the file (dbstat) and counts every row of every table, on the event loop of the
// process serving /metrics (an MTA's, with metrics.port). The size is two pragmas. What the process
// reads from files (/proc/self/io rchar: SQLite's page reads are pread calls) shows which it does.

const now = Date.parse('2026-09-01T12:00:00Z');
const bytesRead = () => Number(/^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))![1]);

describe.skipIf(process.platform !== 'linux')('herald_database_size_bytes on a large SQLite database', () => {
  let database: TestDatabase;
  let herald: Herald;

  beforeAll(async () => {
    database = await createTestDatabase('sqlite');
    herald = await openHerald({
      config: parseConfig({ database: { url: database.url } }, 'test'),
      logger: silentLogger,
      clock: manualClock(now),
    });
    const { deliveryId } = await seedDelivery(herald.store.db, { now, recipients: [], state: 'finished' });
    // 100,000 sent logs with some data each: a file of tens of megabytes, far past SQLite's page cache.
    await sql`with recursive n(i) as (select 1 union all select i + 1 from n where i < 100000)
      insert into delivery_logs (delivery_id, email, domain, data, status, attempts, next_attempt_at, updated_at)
      select ${deliveryId}, 'r' || i || '@example.test', 'example.test', printf('{"note":"%.300c"}', 'x'), 'sent', 1, ${now}, ${now}
      from n`.execute(herald.store.db);
  }, 120_000);
  afterAll(async () => {
    await herald?.close();
    await database?.drop();
  });

  it('reads the size without reading the file', async () => {
    const size = Number(
      (
        await sql<{
          n: number;
        }>`select page_count * page_size as n from pragma_page_count(), pragma_page_size()`.execute(herald.store.db)
      ).rows[0]!.n,
    );
    expect(size).toBeGreaterThan(30_000_000);
    ensurePlatformCollector(herald);
    const before = bytesRead();
    const text = await herald.metrics.registry.metrics();
    const read = bytesRead() - before;
    expect(text).toContain(`herald_database_size_bytes ${size}`);
    // The other gauges read a few pages; a pass over the file reads all of them, twice.
    expect(read).toBeLessThan(size / 10);
  });
});
