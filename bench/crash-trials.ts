// Crash trials: N times, `herald start --roles mta` (a real child process) is killed with SIGKILL in the
// middle of a send, then started again until every recipient has a final status. Per trial it prints
// what the ISP simulator and the database saw:
//   lost             recipients the database calls sent that the sink never accepted, or that never got
//                    a final status at all
//   never-finalised  recipients still pending/sending when the restarted process had nothing left to do
//   duplicates       recipients the sink accepted more than once (accepted on an open connection at the kill,
//                    or an outcome accepted remotely but not yet committed: bounded, never zero by design)
// Run: node --import tsx bench/crash-trials.ts [--dialect sqlite|postgres] [--trials 20] [--recipients 2000]
//      [--log-dir DIR (each trial's herald output, warnings and errors)] [--only N (trial N alone)]
// Prints figures (one line per trial, totals, one JSON line); it never passes or fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sql } from 'kysely';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { waitFor } from '../test/support/wait.ts';

const heraldBin = resolve(import.meta.dirname, '../bin/herald.js');
const finalStatuses = new Set(['sent', 'failed', 'ignored', 'cancelled']);

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

/** Kill points spread evenly over 10–80 % of the send (golden-ratio sequence): the same for every run. */
function killFraction(trialNumber: number): number {
  return 0.1 + 0.7 * ((trialNumber * 0.618033988749895) % 1);
}

function writeConfig(simulator: Simulator, databaseUrl: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'herald-crash-'));
  const rules = join(dir, 'mx-rules.yaml');
  // Rules that never bind: the trials are about crash safety, not pacing.
  writeFileSync(
    rules,
    'rules:\n  - name: generic\n    mask: "*"\n    maxConnections: 4\n    maxMessagesPerHour: 100000000\n    maxMessagesPerConnection: 50\n',
  );
  const routes = simulator.routes
    .map((route) => `    - { match: "${route.match}", host: "${route.host}", port: ${route.port} }`)
    .join('\n');
  const file = join(dir, 'herald.yaml');
  writeFileSync(
    file,
    [
      `database: { url: "${databaseUrl}" }`,
      'mta:',
      `  resolverServers: ["${simulator.dnsServer}"]`,
      '  pollIntervalMs: 50',
      '  routes:',
      routes,
      'shaping:',
      `  rulesFiles: ["${rules}"]`,
    ].join('\n'),
  );
  return file;
}

/** `logFile`: where the child's output goes (warnings and errors, JSON lines); none: discarded. */
function startHerald(config: string, logFile?: string): ChildProcess {
  const output = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [heraldBin, 'start', '--roles', 'mta', '--config', config], {
    env: { ...process.env, HERALD_LOG_LEVEL: logFile ? 'warn' : 'error', HERALD_DATABASE_URL: '' },
    stdio: ['ignore', output, output],
  });
  if (typeof output === 'number') closeSync(output);
  return child;
}

async function statusOf(store: Store, deliveryId: number): Promise<Map<string, string>> {
  const rows = await store.db
    .selectFrom('delivery_logs')
    .select(['email', 'status'])
    .where('delivery_id', '=', deliveryId)
    .execute();
  return new Map(rows.map((row) => [row.email, row.status]));
}

async function unfinished(store: Store, deliveryId: number): Promise<number> {
  const row = await store.db
    .selectFrom('delivery_logs')
    .select(sql<number>`count(*)`.as('n'))
    .where('delivery_id', '=', deliveryId)
    .where('status', 'in', ['pending', 'sending'])
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

interface TrialResult {
  trial: number;
  killedAfter: number;
  sentAtKill: number;
  lost: number;
  neverFinalised: number;
  duplicates: number;
  seconds: number;
}

async function trial(
  simulator: Simulator,
  dialect: 'sqlite' | 'postgres',
  number: number,
  recipientsCount: number,
  killFraction: number,
  logDir: string | undefined,
): Promise<TrialResult> {
  const started = Date.now();
  const database = await createScratchDatabase(dialect, 'crash');
  const store = openStore(database.url);
  try {
    await migrateToLatest(store);
    // Accepting domains and one of hard failures (unknown users): both kinds must end final.
    const recipients = Array.from({ length: recipientsCount }, (_, i) => ({
      email: `t${number}-${i}@${i % 10 === 9 ? 'unknown-users.test' : i % 2 ? 'accept.test' : 'gmail.test'}`,
      data: { first_name: `R${i}` },
    }));
    const { deliveryId } = await seedDelivery(store.db, { recipients, now: Date.now() });
    const config = writeConfig(simulator, database.url);
    const accepted = () => recipients.reduce((n, r) => n + (simulator.acceptedCount(r.email) > 0 ? 1 : 0), 0);
    const killAt = Math.max(1, Math.floor(recipientsCount * 0.9 * killFraction));

    const logFile = logDir ? join(logDir, `trial-${number}.log`) : undefined;
    const first = startHerald(config, logFile);
    await waitFor(() => accepted() >= killAt, `trial ${number}: ${killAt} messages accepted`, 120_000);
    first.kill('SIGKILL');
    await once(first, 'exit');
    const sentAtKill = [...(await statusOf(store, deliveryId)).values()].filter((s) => s === 'sent').length;

    const second = startHerald(config, logFile);
    try {
      await waitFor(async () => (await unfinished(store, deliveryId)) === 0, `trial ${number}: all final`, 120_000);
    } catch {
      // Counted below as never finalised.
    }
    second.kill('SIGTERM');
    await once(second, 'exit');

    const statuses = await statusOf(store, deliveryId);
    let lost = 0;
    let neverFinalised = 0;
    let duplicates = 0;
    for (const recipient of recipients) {
      const status = statuses.get(recipient.email);
      const times = simulator.acceptedCount(recipient.email);
      if (times > 1) duplicates++;
      if (!status || !finalStatuses.has(status)) neverFinalised++;
      if (!status || (status === 'sent' && times === 0)) lost++;
    }
    return {
      trial: number,
      killedAfter: killAt,
      sentAtKill,
      lost,
      neverFinalised,
      duplicates,
      seconds: (Date.now() - started) / 1_000,
    };
  } finally {
    await store.close();
    await database.drop();
  }
}

async function main(): Promise<void> {
  const dialect = option('dialect', 'sqlite');
  if (dialect !== 'sqlite' && dialect !== 'postgres') throw new Error(`--dialect must be sqlite or postgres`);
  const trials = Number(option('trials', '20'));
  const recipientsCount = Number(option('recipients', '2000'));
  const logDir = option('log-dir', '') || undefined;
  const only = Number(option('only', '0'));
  const simulator = await startSimulator({ trackRecipients: true, greylistDelayMs: 0 });
  const results: TrialResult[] = [];
  try {
    console.log(
      `crash trials: ${trials} × kill -9 of herald start mid-send, ${recipientsCount} recipients, ${dialect}`,
    );
    console.log('trial  killed-after  sent-at-kill  lost  never-finalised  duplicates  seconds');
    for (let n = only || 1; n <= (only || trials); n++) {
      const result = await trial(simulator, dialect, n, recipientsCount, killFraction(n), logDir);
      results.push(result);
      console.log(
        `${String(n).padStart(5)}  ${String(result.killedAfter).padStart(12)}  ${String(result.sentAtKill).padStart(12)}  ${String(result.lost).padStart(4)}  ${String(result.neverFinalised).padStart(15)}  ${String(result.duplicates).padStart(10)}  ${result.seconds.toFixed(1).padStart(7)}`,
      );
    }
  } finally {
    await simulator.close();
  }
  const sum = (key: 'lost' | 'neverFinalised' | 'duplicates') => results.reduce((n, r) => n + r[key], 0);
  const maxDuplicates = Math.max(...results.map((r) => r.duplicates));
  console.log(
    `totals: lost ${sum('lost')}, never finalised ${sum('neverFinalised')}, duplicates ${sum('duplicates')} (max ${maxDuplicates} in one trial)`,
  );
  console.log(
    JSON.stringify({
      bench: 'crash-trials',
      dialect,
      trials,
      recipients: recipientsCount,
      lost: sum('lost'),
      neverFinalised: sum('neverFinalised'),
      duplicates: sum('duplicates'),
      maxDuplicates,
      results,
    }),
  );
}

await main();
