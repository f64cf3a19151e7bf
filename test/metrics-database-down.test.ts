import { describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { startMetricsServer } from '../src/metrics/server.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { postgresBehindProxy } from './support/cuttable-proxy.ts';
import { postgresUnavailable } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// /metrics while the database is down (PostgreSQL behind a proxy that resets every connection): the
// process's own counters are still served, and the gauges read from the database show nothing once
// their last read is old, with herald_database_gauges_age_seconds saying how old, instead of a
// queue depth of an hour ago drawn as a flat line.

const now = Date.parse('2026-09-01T12:00:00Z');

async function heraldBehindProxy() {
  const { database, proxy, url } = await postgresBehindProxy();
  const clock = manualClock(now);
  const herald = await openHerald({
    config: parseConfig({ database: { url } }, 'test'),
    logger: silentLogger,
    clock,
  });
  const server = await startMetricsServer(herald, 0);
  const scrape = async () => {
    const answer = await fetch(`${server.url}/metrics`);
    return { status: answer.status, text: await answer.text() };
  };
  const close = async () => {
    await server.close();
    await herald.close();
    await proxy.close();
    await database.drop();
  };
  return { herald, proxy, clock, scrape, close };
}

describe.skipIf(postgresUnavailable !== undefined)('metrics when the database is down', () => {
  it('stops serving gauges of an hour ago and says how old they are; the counters are still served', async () => {
    const setup = await heraldBehindProxy();
    try {
      await seedDelivery(setup.herald.store.db, {
        now: now - 1_000,
        recipients: [{ email: 'a@private.example' }, { email: 'b@private.example' }],
      });
      setup.herald.metrics.countTrackingEvent('open');
      const before = await setup.scrape();
      expect(before.status).toBe(200);
      expect(before.text).toContain('herald_queue_due{domain_class="other"} 2');
      expect(before.text).toContain('herald_database_gauges_age_seconds 0');

      setup.proxy.refuse();
      setup.clock.advance(3_600_000);
      const after = await setup.scrape();
      expect(after.status).toBe(200);
      expect(after.text).toContain('herald_tracking_events_total{kind="open"} 1');
      expect(after.text).toContain('herald_database_gauges_age_seconds 3600');
      expect(after.text).not.toMatch(/^herald_queue_due\{/m);
      expect(after.text).not.toMatch(/^herald_deliveries\{/m);
      expect(after.text).not.toMatch(/^herald_workflow_healthy\{/m);
      // Gauges without labels show nothing either, not the 0 a reset gauge holds (a database of 0 bytes).
      expect(after.text).not.toMatch(/^herald_database_size_bytes /m);
      expect(after.text).not.toMatch(/^herald_mx_backoffs_active /m);

      // Back: the next reads fill the gauges again.
      setup.proxy.resume();
      await waitFor(
        async () => (await setup.scrape()).text.includes('herald_queue_due{domain_class="other"} 2'),
        'the queue gauge once the database answers again',
        15_000,
      );
      expect((await setup.scrape()).text).toContain('herald_database_gauges_age_seconds 0');
    } finally {
      await setup.close();
    }
  }, 30_000);

  it('serves the counters when the database is down at the first scrape, not a 500', async () => {
    const setup = await heraldBehindProxy();
    try {
      setup.herald.metrics.countTrackingEvent('click');
      setup.proxy.refuse();
      setup.clock.advance(90_000);
      const first = await setup.scrape();
      expect(first.status).toBe(200);
      expect(first.text).toContain('herald_tracking_events_total{kind="click"} 1');
      expect(first.text).toContain('herald_database_gauges_age_seconds 90');
      expect(first.text).not.toMatch(/^herald_queue_due\{/m);
    } finally {
      await setup.close();
    }
  }, 30_000);
});
