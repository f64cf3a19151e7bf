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

// Issue 12 item 7: two `herald start --roles mta` on one host shared the host-name node id; the second
// "took back claims left by a previous run of this node" while the first was sending them, and
// recipients got the message twice. Each process now holds its own node id with a heartbeat
// (mta_nodes): without a configured nodeId the second takes a per-process id, with one it is refused.

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');
let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ trackRecipients: true });
});
afterAll(async () => {
  await simulator.close();
});

function writeConfig(databaseUrl: string, nodeId?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-two-'));
  const file = join(dir, 'herald.yaml');
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
      ...(nodeId ? [`nodeId: ${nodeId}`] : []),
      `database: { url: "${databaseUrl}" }`,
      `mta:`,
      `  resolverServers: ["${simulator.dnsServer}"]`,
      `  pollIntervalMs: 50`,
      `  claimBatchSize: 20`,
      `  routes:`,
      routes,
      `shaping:`,
      `  rulesFiles: ["${rules}"]`,
    ].join('\n'),
  );
  return file;
}

function startHerald(config: string, stderr: string[]): ChildProcess {
  const child = spawn(process.execPath, [heraldBin, 'start', '--roles', 'mta', '--config', config], {
    env: { ...process.env, HERALD_LOG_LEVEL: 'warn', HERALD_DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  return child;
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const [code] = await exited;
  return code as number | null;
}

describeEachDialect('two MTA processes on one database', (context) => {
  it('without a configured nodeId: each process claims under its own id, no recipient gets the message twice', async () => {
    const prefix = `two-${context.dialect}`;
    const recipients = Array.from({ length: 1_500 }, (_, i) => ({
      email: `${prefix}-${i}@accept.test`,
      data: { first_name: `R${i}` },
    }));
    const { deliveryId } = await seedDelivery(context.store().db, { recipients, now: Date.now() });
    const config = writeConfig(context.url());
    const stderr: string[] = [];
    const accepted = () => recipients.reduce((n, r) => n + (simulator.acceptedCount(r.email) > 0 ? 1 : 0), 0);
    const first = startHerald(config, stderr);
    const children = [first];
    try {
      await waitFor(() => accepted() >= 100, 'the first process to be sending');
      children.push(startHerald(config, stderr));
      await waitFor(
        async () => {
          const row = await context
            .store()
            .db.selectFrom('delivery_logs')
            .select(sql<number>`count(*)`.as('n'))
            .where('delivery_id', '=', deliveryId)
            .where('status', '=', 'sent')
            .executeTakeFirstOrThrow();
          return Number(row.n) === recipients.length;
        },
        'every recipient sent',
        60_000,
      );
    } finally {
      for (const child of children) await stop(child);
    }
    const duplicates = recipients.filter((r) => simulator.acceptedCount(r.email) > 1).length;
    const lost = recipients.filter((r) => simulator.acceptedCount(r.email) === 0).length;
    expect({ duplicates, lost }).toEqual({ duplicates: 0, lost: 0 });
    expect(stderr.join('')).not.toMatch(/took back claims left by a previous run/);
  });

  it('a configured nodeId held by a live process: the second process is refused with NODE_ID_IN_USE', async () => {
    const config = writeConfig(context.url(), `held-${context.dialect}`);
    const stderr: string[] = [];
    const first = startHerald(config, stderr);
    try {
      await waitFor(async () => {
        const row = await context
          .store()
          .db.selectFrom('mta_nodes')
          .select('pid')
          .where('node_id', '=', `held-${context.dialect}`)
          .executeTakeFirst();
        return row !== undefined;
      }, 'the first process to hold its node id');
      const second = startHerald(config, stderr);
      const [code] = await once(second, 'exit');
      expect(code).not.toBe(0);
      expect(stderr.join('')).toMatch(
        new RegExp(`NODE_ID_IN_USE: node id held-${context.dialect} is held by a live MTA process`),
      );
      expect(first.exitCode).toBeNull();
    } finally {
      expect(await stop(first)).toBe(0);
    }
  });
});
