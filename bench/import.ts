import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { importRecipients } from '../src/audience/csv-import.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';

// node --import tsx bench/import.ts [--rows 1000000] [--dialect sqlite|postgres] [--bad-every 0] [--apply-connections 2]
// Generates a CSV (email + 4 personalization columns), imports it into a fresh database and prints
// rows/s, elapsed time and peak RSS. Targets (issue 18): 1M rows ≤ 12 s on SQLite, ≤ 15 s on PostgreSQL,
// peak RSS ≤ 200 MB. Figures only.
// With a PostgreSQL server on this machine it also prints the CPU time of the server processes that
// served the bench database (serverCpuS): on a shared machine, CPU times compare where wall times don't.

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    dialect: { type: 'string', default: 'sqlite' },
    'bad-every': { type: 'string', default: '0' },
    'apply-connections': { type: 'string' },
    'write-csv': { type: 'string' },
    postgres: {
      type: 'string',
      default: process.env.HERALD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
  },
});
const rows = Number(values.rows);
const badEvery = Number(values['bad-every']);
const dialect = values.dialect === 'postgres' ? 'postgres' : 'sqlite';
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-import-'));

const domains = ['gmail.com', 'yahoo.fr', 'orange.fr', 'outlook.com', 'free.fr', 'example.org', 'bücher.de', 'web.de'];
const cities = ['Paris', 'Lyon', 'Köln', 'Zürich', 'Montréal', 'São Paulo'];

async function writeCsv(file: string): Promise<void> {
  const out = createWriteStream(file);
  out.write('email,first_name,last_name,city,customer_id\n');
  for (let i = 0; i < rows; i++) {
    const email =
      badEvery > 0 && i % badEvery === 0 ? `broken${i}.example.com` : `user.${i}+news@${domains[i % domains.length]}`;
    const line = `${email},First${i % 997},"Last, ${i % 1009}",${cities[i % cities.length]},C${String(i).padStart(8, '0')}\n`;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

async function openBenchStore(): Promise<{ store: Store; url?: string; drop(): Promise<void> }> {
  if (dialect === 'sqlite') {
    const store = openStore(`sqlite:${join(dir, 'herald.db')}`);
    return { store, drop: async () => {} };
  }
  const database = await createScratchDatabase('postgres', 'bench_import', values.postgres as string);
  return { store: openStore(database.url), url: database.url, drop: () => database.drop() };
}

/** Clock ticks of a local process (user + system), or undefined if it is not on this machine or gone. */
function processCpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Samples, every 200 ms, the CPU time of each server process connected to the bench database (the
 * pool's clients come and go): the sum of what each used since it was first seen, or since the start
 * for those already there (the migrations' connections).
 */
function watchServerCpu(url: string): { stop(): Promise<number | undefined> } {
  const client = new pg.Client({ connectionString: url });
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  let local = true;
  const sample = async (starting: boolean) => {
    const { rows: backends } = await client.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );
    for (const { pid } of backends) {
      const cpu = processCpuSeconds(pid);
      if (cpu === undefined) local = false;
      else {
        if (!first.has(pid)) first.set(pid, starting ? cpu : 0);
        last.set(pid, cpu);
      }
    }
  };
  const ready = client.connect().then(() => sample(true));
  const timer = setInterval(() => void ready.then(() => sample(false)).catch(() => {}), 200);
  return {
    async stop() {
      clearInterval(timer);
      await ready.then(() => sample(false));
      await client.end();
      return local ? [...last].reduce((sum, [pid, cpu]) => sum + cpu - (first.get(pid) ?? 0), 0) : undefined;
    },
  };
}

// The CSV is written by a child process (this file with --write-csv FILE), so the peak RSS printed is
// the import's own (with the modules every herald command loads), not the generator's.
if (values['write-csv']) {
  await writeCsv(values['write-csv']);
  process.exit(0);
}

const file = join(dir, 'recipients.csv');
const { store, url, drop } = await openBenchStore();
try {
  let started = performance.now();
  execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2), '--write-csv', file],
    {
      stdio: 'inherit',
    },
  );
  console.log(
    `generated ${rows} rows (${(statSync(file).size / 1e6).toFixed(1)} MB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  await migrateToLatest(store);
  const rssBefore = process.resourceUsage().maxRSS;
  let readDoneAt = 0;
  // What the peak RSS is made of, sampled at each progress report: the JS heap and memory outside it (buffers).
  let peakHeapUsed = 0;
  let peakExternal = 0;
  // Migrations ran on other connections, closed by now or counted here: their share is milliseconds.
  const serverCpu = url ? watchServerCpu(url) : undefined;
  const cpuBefore = process.cpuUsage();
  started = performance.now();
  const summary = await importRecipients({
    store,
    file,
    list: 'bench',
    maxFileBytes: 4 * 1024 ** 3,
    maxRecordBytes: 64 * 1024,
    applyConnections: values['apply-connections'] === undefined ? undefined : Number(values['apply-connections']),
    onProgress: (p) => {
      const memory = process.memoryUsage();
      peakHeapUsed = Math.max(peakHeapUsed, memory.heapUsed);
      peakExternal = Math.max(peakExternal, memory.external);
      if (p.phase === 'applying' && readDoneAt === 0) readDoneAt = performance.now();
    },
  });
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const serverCpuS = await serverCpu?.stop();
  const peakMb = process.resourceUsage().maxRSS / 1024;
  console.log(
    JSON.stringify({
      dialect,
      rows,
      read: summary.read,
      imported: summary.imported,
      rejected: summary.rejected,
      elapsedS: Number(elapsed.toFixed(2)),
      readPhaseS: Number(((readDoneAt - started) / 1000).toFixed(2)),
      applyPhaseS: Number((elapsed - (readDoneAt - started) / 1000).toFixed(2)),
      rowsPerS: Math.round(rows / elapsed),
      // CPU seconds of this process (user + system): the figure to compare when the machine is shared.
      cpuS: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
      ...(serverCpuS === undefined ? {} : { serverCpuS: Number(serverCpuS.toFixed(2)) }),
      peakRssMb: Math.round(peakMb),
      rssBeforeImportMb: Math.round(rssBefore / 1024),
      peakHeapUsedMb: Math.round(peakHeapUsed / 1024 ** 2),
      peakExternalMb: Math.round(peakExternal / 1024 ** 2),
      targets: { elapsedS: dialect === 'sqlite' ? 12 : 15, peakRssMb: 200 },
    }),
  );
} finally {
  await store.close();
  await drop();
  rmSync(dir, { recursive: true, force: true });
}
