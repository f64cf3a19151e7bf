// The /r/ redirect (token verification + link lookup + raw event logging) against a bare Fastify
// route answering 302, side by side in one run, loaded with autocannon on loopback. Prints req/s,
// p50/p99 latency and the ratio (issue target: /r/ ≥ 60 % of the bare route). Never passes or fails.
//
//   node --import tsx bench/redirect.ts
//     HERALD_BENCH_SECONDS      seconds per load (default 5)
//     HERALD_BENCH_CONNECTIONS  autocannon connections (default 50)
//     HERALD_BENCH_ROUNDS       bare, /r/, bare, /r/ … alternated this many times (default 4)
//     HERALD_BENCH_WARMUP       seconds of load on each server before the rounds, not counted (default 2):
//                               JIT compilation, first pages of the database and WAL files
//     HERALD_BENCH_PROFILE=DIR  --cpu-prof of both servers into DIR/bare and DIR/tracked
//     HERALD_BENCH_PIN=1        Linux: both servers on CPU 1, autocannon on CPU 0 (taskset), so the
//                               load generator never takes the servers' core and both servers see the same one
//
// Each server is its own child process (this file with `serve-bare` / `serve-tracked`), the load
// generator is this process: three event loops, so neither server shares its loop with autocannon
// or with the other server, and both run under the same conditions. Loads alternate so a change of
// machine load hits both sides alike. The tracked delivery lives in a temporary SQLite database;
// events are flushed in batches exactly as in production, and counted at the end.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import Fastify from 'fastify';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { systemClock } from '../src/common/clock.ts';

// autocannon ships no types; the little used here is declared locally.
interface AutocannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
  '3xx': number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: Record<string, unknown>,
) => Promise<AutocannonResult>;

const seconds = Number(process.env.HERALD_BENCH_SECONDS ?? 5);
const connections = Number(process.env.HERALD_BENCH_CONNECTIONS ?? 50);
const rounds = Number(process.env.HERALD_BENCH_ROUNDS ?? 4);
const warmupSeconds = Number(process.env.HERALD_BENCH_WARMUP ?? 2);
const recipients = 2_000;
const target = 'https://shop.example.com/sale?utm_source=herald';

async function serveBare(): Promise<void> {
  const bare = Fastify({ logger: false });
  bare.get('/r/:token', async (_request, reply) => reply.code(302).header('location', target).send());
  const url = await bare.listen({ host: '127.0.0.1', port: 0 });
  process.send!({ url });
  answer(async () => {
    await bare.close();
    return {};
  });
}

async function serveTracked(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-redirect-'));
  const store = openStore(`sqlite:${join(dir, 'herald.db')}`);
  await migrateToLatest(store);
  const now = Date.now();
  const seeded = await seedTrackedDelivery(store, {
    name: 'bench',
    html: `<html><body><a href="${target}">Sale</a></body></html>`,
    now,
    recipients: Array.from({ length: recipients }, (_, i) => ({ email: `r${i}@example.test` })),
  });
  const service = await createTrackingService(
    // autocannon stands for many clients from one address: loopback is counted as a proxy would be, by
    // tracking.maxConnections only, so HERALD_BENCH_CONNECTIONS above maxConnectionsPerClient still measures.
    // Each of the 2,000 tokens is clicked hundreds of times: a budget per message as large as the run logs them all.
    heraldOver(
      store,
      { tracking: { host: '127.0.0.1', port: 0, proxies: ['loopback'], messageEventBurst: 1_000_000_000 } },
      systemClock,
    ),
  );
  const issuedAt = Math.floor(now / 1000) - 3_600;
  const paths = seeded.logs.map(
    (log) =>
      `/r/${service.keyRing.sign({ kind: 'click', deliveryId: seeded.deliveryId, logId: log.id, linkIndex: 0, occurrence: 0, issuedAt })}`,
  );
  const url = await service.listen();
  process.send!({ url, paths });
  answer(async () => {
    await service.close();
    const stats = service.events.stats();
    const rows = await store.db
      .selectFrom('tracking_events')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    return { ...stats, rows: Number(rows.n) };
  });
}

/** A server child answers 'cpu' with its CPU time so far (µs, every thread, user and system apart) and 'stop' with its final figures. */
function answer(stopping: () => Promise<Record<string, number>>): void {
  process.on('message', async (message) => {
    if (message === 'cpu') {
      const usage = process.cpuUsage();
      process.send!({ user: usage.user, system: usage.system });
      return;
    }
    process.send!(await stopping());
    process.exit(0);
  });
}

interface CpuTime {
  user: number;
  system: number;
}

function cpuOf(proc: ChildProcess): Promise<CpuTime> {
  const answered = new Promise<CpuTime>((resolve) => proc.once('message', (m) => resolve(m as CpuTime)));
  proc.send('cpu');
  return answered;
}

function child(
  mode: string,
  profile?: string,
): { process: ChildProcess; ready: Promise<{ url: string; paths?: string[] }> } {
  const execArgv = ['--import', 'tsx', ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : [])];
  const proc = fork(fileURLToPath(import.meta.url), [mode], { execArgv });
  return {
    process: proc,
    ready: new Promise((resolve) => proc.once('message', (m) => resolve(m as { url: string; paths?: string[] }))),
  };
}

function stop(proc: ChildProcess): Promise<Record<string, number>> {
  const answer = new Promise<Record<string, number>>((resolve) =>
    proc.once('message', (m) => resolve(m as Record<string, number>)),
  );
  proc.send('stop');
  return answer;
}

interface Line {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Server CPU time per request (every thread): far steadier than req/s on a shared machine. */
  cpuMicrosPerRequest: number;
  /** Of which in the kernel (socket reads and writes, wake-ups). */
  systemMicrosPerRequest: number;
}

function autocannonRun(url: string, paths: string[], duration: number): Promise<AutocannonResult> {
  return autocannon({
    url,
    connections,
    duration,
    requests: paths.map((path) => ({
      method: 'GET',
      path,
      headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0' },
    })),
  });
}

async function load(name: string, url: string, paths: string[], server: ChildProcess): Promise<Line> {
  const cpuBefore = await cpuOf(server);
  const result = await autocannonRun(url, paths, seconds);
  const cpuAfter = await cpuOf(server);
  const served = Math.max(1, result['3xx']);
  const line = {
    reqPerSec: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    cpuMicrosPerRequest: (cpuAfter.user + cpuAfter.system - cpuBefore.user - cpuBefore.system) / served,
    systemMicrosPerRequest: (cpuAfter.system - cpuBefore.system) / served,
  };
  console.log(
    `${name.padEnd(20)} ${String(line.reqPerSec).padStart(7)} req/s   p50 ${line.p50Ms} ms   p99 ${line.p99Ms} ms   server CPU ${line.cpuMicrosPerRequest.toFixed(1)} µs/req (kernel ${line.systemMicrosPerRequest.toFixed(1)})   (3xx ${result['3xx']}, errors ${result.errors}, timeouts ${result.timeouts}; load avg ${loadavg()[0]!.toFixed(2)})`,
  );
  return line;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function main(): Promise<void> {
  const profile = process.env.HERALD_BENCH_PROFILE;
  const bareChild = child('serve-bare', profile && join(profile, 'bare'));
  const trackedChild = child('serve-tracked', profile && join(profile, 'tracked'));
  const [bare, tracked] = await Promise.all([bareChild.ready, trackedChild.ready]);
  if (process.env.HERALD_BENCH_PIN) {
    // -a: every thread of the process (libuv pool, the SQLite writer worker) follows.
    for (const proc of [bareChild.process, trackedChild.process])
      execFileSync('taskset', ['-a', '-p', '-c', '1', String(proc.pid)], { stdio: 'ignore' });
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
  }
  const paths = tracked.paths!;
  console.log(
    `autocannon ${seconds} s each after ${warmupSeconds} s of warm-up per server, ${connections} connections, ${paths.length} distinct tokens, loopback; servers in two child processes${process.env.HERALD_BENCH_PIN ? ' pinned to CPU 1, autocannon to CPU 0' : ''}; load avg ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (warmupSeconds > 0) {
    for (const url of [bare.url, tracked.url]) await autocannonRun(url, paths, warmupSeconds);
  }
  const bareLines: Line[] = [];
  const trackedLines: Line[] = [];
  for (let round = 0; round < rounds; round++) {
    if (process.env.HERALD_BENCH_ONLY !== 'tracked')
      bareLines.push(await load('bare Fastify 302', bare.url, paths, bareChild.process));
    trackedLines.push(await load('/r/ (verify + log)', tracked.url, paths, trackedChild.process));
    if (bareLines.length > 0) {
      const ratio = trackedLines[round]!.reqPerSec / bareLines[round]!.reqPerSec;
      console.log(`round ${round + 1}: /r/ serves ${(ratio * 100).toFixed(1)} % of the bare route's requests/s`);
    }
  }
  if (bareLines.length > 0) {
    const ratio = mean(trackedLines.map((l) => l.reqPerSec)) / mean(bareLines.map((l) => l.reqPerSec));
    const ratios = trackedLines.map((l, i) => l.reqPerSec / bareLines[i]!.reqPerSec).sort((a, b) => a - b);
    const median = (ratios[(ratios.length - 1) >> 1]! + ratios[ratios.length >> 1]!) / 2;
    const p = (lines: Line[], key: 'p50Ms' | 'p99Ms') => mean(lines.map((l) => l[key])).toFixed(1);
    console.log(
      `overall: bare ${Math.round(mean(bareLines.map((l) => l.reqPerSec)))} req/s (p50 ${p(bareLines, 'p50Ms')} / p99 ${p(bareLines, 'p99Ms')} ms), ` +
        `/r/ ${Math.round(mean(trackedLines.map((l) => l.reqPerSec)))} req/s (p50 ${p(trackedLines, 'p50Ms')} / p99 ${p(trackedLines, 'p99Ms')} ms): ` +
        `${(ratio * 100).toFixed(1)} % of the means, median of rounds ${(median * 100).toFixed(1)} % (target ≥ 60 %)`,
    );
    const cpuBare = mean(bareLines.map((l) => l.cpuMicrosPerRequest));
    const cpuTracked = mean(trackedLines.map((l) => l.cpuMicrosPerRequest));
    console.log(
      `server CPU per request: bare ${cpuBare.toFixed(1)} µs, /r/ ${cpuTracked.toFixed(1)} µs (every thread, SQLite writer included): /r/ could serve ${((cpuBare / cpuTracked) * 100).toFixed(1)} % of the bare rate on a free core`,
    );
  }
  await stop(bareChild.process);
  const events = await stop(trackedChild.process);
  console.log(
    `events: written ${events.written}, dropped ${events.dropped}, failed writes ${events.failedWrites}, rows in tracking_events ${events.rows}`,
  );
}

if (process.argv[2] === 'serve-bare') await serveBare();
else if (process.argv[2] === 'serve-tracked') await serveTracked();
else await main();
