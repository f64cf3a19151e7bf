import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { describeEachDialect } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// `herald start` as a real child process: kill -9 in the middle of a send, restart, and check that
// every recipient ends with exactly one final status; SIGTERM finishes cleanly with nothing 'sending'.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');
let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ trackRecipients: true });
});
afterAll(async () => {
  await simulator.close();
});

function writeConfig(databaseUrl: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-start-'));
  const file = join(dir, 'herald.yaml');
  // MX rules that do not bind: this test is about crash safety, not throttling (the shipped generic rule allows 3000/h).
  const rules = join(dir, 'mx-rules.yaml');
  writeFileSync(
    rules,
    'rules:\n  - name: generic\n    mask: "*"\n    maxConnections: 4\n    maxMessagesPerHour: 100000000\n    maxMessagesPerConnection: 50\n',
  );
  const routes = simulator.routes
    .map((r) => `    - { match: "${r.match}", host: "${r.host}", port: ${r.port} }`)
    .join('\n');
  writeFileSync(
    file,
    [
      `nodeId: crash-test`,
      `database: { url: "${databaseUrl}" }`,
      `mta:`,
      `  resolverServers: ["${simulator.dnsServer}"]`,
      `  pollIntervalMs: 50`,
      `  maxConnectionsPerMx: 4`,
      `  maxMessagesPerConnection: 50`,
      `  routes:`,
      routes,
      `shaping:`,
      `  rulesFiles: ["${rules}"]`,
    ].join('\n'),
  );
  return file;
}

function startHerald(config: string): ChildProcess {
  return spawn(process.execPath, [heraldBin, 'start', '--roles', 'mta', '--config', config], {
    env: { ...process.env, HERALD_LOG_LEVEL: 'warn', HERALD_DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

describeEachDialect('herald start crash safety', (context) => {
  const statusCounts = async (deliveryId: number) => {
    const rows = await context
      .store()
      .db.selectFrom('delivery_logs')
      .select(['status', sql<number>`count(*)`.as('n')])
      .where('delivery_id', '=', deliveryId)
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Record<string, number>;
  };

  it('kill -9 mid-send then restart: every recipient ends sent exactly once, duplicates only from open transactions', async () => {
    const prefix = `kill-${context.dialect}`;
    const recipients = Array.from({ length: 3_000 }, (_, i) => ({
      email: `${prefix}-${i}@${i % 2 ? 'accept.test' : 'gmail.test'}`,
      data: { first_name: `R${i}` },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { recipients, now: Date.now() });
    const config = writeConfig(context.url());
    const accepted = () => recipients.reduce((n, r) => n + (simulator.acceptedCount(r.email) > 0 ? 1 : 0), 0);

    const first = startHerald(config);
    await waitFor(() => accepted() >= 600, 'the first process to send 600 messages', 120_000);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const atKill = await statusCounts(deliveryId);
    expect(atKill.sent ?? 0).toBeLessThan(3_000);

    const second = startHerald(config);
    await waitFor(
      async () => (await statusCounts(deliveryId)).sent === 3_000,
      'every recipient to be sent after restart',
      120_000,
    );
    second.kill('SIGTERM');
    const [code] = await once(second, 'exit');
    expect(code).toBe(0);

    const final = await statusCounts(deliveryId);
    expect(final).toEqual({ sent: 3_000 });
    const duplicates = recipients.filter((r) => simulator.acceptedCount(r.email) > 1).length;
    const lost = recipients.filter((r) => simulator.acceptedCount(r.email) === 0).length;
    expect(lost).toBe(0);
    // At most one open SMTP transaction per connection (2 MX hosts × 4 connections) plus the outcomes of
    // the group-commit window that had not reached the database.
    expect(duplicates).toBeLessThanOrEqual(2 * 4 + 64);
  }, 300_000); // child processes start slowly on a loaded machine: generous, never a timing assertion

  it('SIGTERM finishes open transactions and leaves nothing in a sending state', async () => {
    const prefix = `term-${context.dialect}`;
    const recipients = Array.from({ length: 2_000 }, (_, i) => ({
      email: `${prefix}-${i}@accept.test`,
      data: { first_name: `T${i}` },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { recipients, now: Date.now() });
    const child = startHerald(writeConfig(context.url()));
    await waitFor(
      () => recipients.some((r, i) => i > 200 && simulator.acceptedCount(r.email) > 0),
      'sending to start',
      120_000,
    );
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const counts = await statusCounts(deliveryId);
    expect(counts.sending ?? 0).toBe(0);
    // Graceful: what the sink accepted is exactly what the database says was sent.
    const acceptedBySink = recipients.filter((r) => simulator.acceptedCount(r.email) > 0).length;
    expect(counts.sent).toBe(acceptedBySink);
    expect((counts.sent ?? 0) + (counts.pending ?? 0)).toBe(2_000);
  }, 300_000); // child processes start slowly on a loaded machine: generous, never a timing assertion
});
