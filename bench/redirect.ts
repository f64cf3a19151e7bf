// The /r/ redirect (token verification + link lookup + raw event logging) against a bare Fastify
// route answering 302, side by side in one run, loaded with autocannon on loopback. Prints req/s,
// p50/p99 latency and the ratio (issue target: /r/ ≥ 60 % of the bare route). Never passes or fails.
//
//   node --import tsx bench/redirect.ts          (HERALD_BENCH_SECONDS, default 10; HERALD_BENCH_CONNECTIONS, default 50)
//
// The servers run in a child process (this file with `serve`), so the load generator does not share
// their event loop. The tracked delivery lives in a temporary SQLite database; events are flushed in
// batches exactly as in production.

import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
const autocannon = createRequire(import.meta.url)('autocannon') as (options: Record<string, unknown>) => Promise<AutocannonResult>;

const seconds = Number(process.env.HERALD_BENCH_SECONDS ?? 10);
const connections = Number(process.env.HERALD_BENCH_CONNECTIONS ?? 50);
const recipients = 2_000;

interface Ready {
  bareUrl: string;
  trackedUrl: string;
  paths: string[];
}

async function serve(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-redirect-'));
  const store = openStore(`sqlite:${join(dir, 'herald.db')}`);
  await migrateToLatest(store);
  const now = Date.now();
  const seeded = await seedTrackedDelivery(store, {
    name: 'bench',
    html: '<html><body><a href="https://shop.example.com/sale?utm_source=herald">Sale</a></body></html>',
    now,
    recipients: Array.from({ length: recipients }, (_, i) => ({ email: `r${i}@example.test` })),
  });
  const service = await createTrackingService(heraldOver(store, { tracking: { host: '127.0.0.1', port: 0 } }, systemClock));
  const issuedAt = Math.floor(now / 1000) - 3_600;
  const paths = seeded.logs.map((log) => `/r/${service.keyRing.sign({ kind: 'click', deliveryId: seeded.deliveryId, logId: log.id, linkIndex: 0, occurrence: 0, issuedAt })}`);
  const bare = Fastify({ logger: false });
  bare.get('/r/:token', async (_request, reply) => reply.code(302).header('location', 'https://shop.example.com/sale?utm_source=herald').send());
  const bareUrl = await bare.listen({ host: '127.0.0.1', port: 0 });
  const trackedUrl = await service.listen();
  process.send!({ bareUrl, trackedUrl, paths } satisfies Ready);
  process.once('message', async () => {
    await bare.close();
    await service.close();
    const stats = service.events.stats();
    const rows = await store.db.selectFrom('tracking_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    process.send!({ ...stats, rows: Number(rows.n) });
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  });
}

async function load(name: string, url: string, paths: string[]) {
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    requests: paths.map((path) => ({ method: 'GET', path, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0' } })),
  });
  const line = { name, reqPerSec: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts };
  console.log(`${name.padEnd(22)} ${String(line.reqPerSec).padStart(7)} req/s   p50 ${line.p50Ms} ms   p99 ${line.p99Ms} ms   (3xx: ${result['3xx']}, errors ${line.errors}, timeouts ${line.timeouts})`);
  return line;
}

async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['serve'], { execArgv: ['--import', 'tsx', ...(process.env.HERALD_BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.HERALD_BENCH_PROFILE] : [])] });
  const ready = await new Promise<Ready>((resolve) => child.once('message', (m) => resolve(m as Ready)));
  console.log(`autocannon ${seconds} s each, ${connections} connections, ${ready.paths.length} distinct tokens, loopback`);
  // HERALD_BENCH_ONLY=tracked skips the bare route (for profiling the tracked one alone).
  const bare = process.env.HERALD_BENCH_ONLY === 'tracked' ? { reqPerSec: NaN } : await load('bare Fastify 302', ready.bareUrl, ready.paths);
  const tracked = await load('/r/ (verify + log)', ready.trackedUrl, ready.paths);
  console.log(`ratio: /r/ serves ${((tracked.reqPerSec / bare.reqPerSec) * 100).toFixed(1)} % of the bare route's requests/s (target ≥ 60 %)`);
  child.send('stop');
  const events = await new Promise<Record<string, number>>((resolve) => child.once('message', (m) => resolve(m as Record<string, number>)));
  console.log(`events: written ${events.written}, dropped ${events.dropped}, failed writes ${events.failedWrites}, rows in tracking_events ${events.rows}`);
}

if (process.argv[2] === 'serve') await serve();
else await main();
