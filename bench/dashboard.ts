// Dashboard benchmark (issue 15): the delivery page's server time on a delivery with 1M logs, the
// database time of one live tick, and the MTA's send throughput with and without 20 browsers polling
// the delivery page every 2 s (in the MTA's process, as `herald start` runs every role in one).
// Run: node --import tsx bench/dashboard.ts [--dialect sqlite|postgres] [--logs 1000000] [--messages 20000] [--viewers 20] [--page-only]
// The page and tick figures are medians of 3 rounds, each on a fresh app (nothing cached); the send
// figures are means of 2 runs each way after a warm-up run.
// Prints figures (text and one JSON line); it never passes or fails on time.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { buildApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { configSchema } from '../src/config/schema.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSmtpSink } from '../src/sim/smtp-sink.ts';
import { createLiveTicks } from '../src/web/live-ticks.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { createWebClient } from '../test/support/web-client.ts';

if (process.argv[2] === '--sink') {
  const sink = await startSmtpSink({ hostname: 'mx.bench.test', trackRecipients: false });
  process.send!({ port: sink.port });
  process.once('message', async () => {
    await sink.close();
    process.send!({ accepted: sink.stats().messagesAccepted }, () => process.disconnect());
  });
} else {
  await main();
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

async function main(): Promise<void> {
  const dialect = option('dialect', 'sqlite') as 'sqlite' | 'postgres';
  const logs = Number(option('logs', '1000000'));
  const messages = Number(option('messages', '20000'));
  const viewers = Number(option('viewers', '20'));
  const database = await createScratchDatabase(dialect, 'bench_dashboard');
  const herald = await openHerald({
    config: configSchema.parse({ database: { url: database.url } }),
    logger: silentLogger,
  });
  try {
    const page = await pageFigures(herald, logs);
    const pageOnly = process.argv.includes('--page-only');
    const send = pageOnly ? undefined : await sendFigures(herald, messages, viewers);
    const result = { bench: 'dashboard', dialect, logs, ...page, ...(send && { messages, viewers, ...send }) };
    console.log(
      `dashboard [${dialect}]: delivery page with ${logs} logs: ${page.pageColdMs} ms cold (first view: tick and indicators read), ${page.pageWarmMs} ms warm (tick shared); one live tick's database time ${page.tickDbMs} ms (ETA ${page.etaDbMs} ms, doctor ${page.doctorDbMs} ms, each at most every 15 s)` +
        (send
          ? `; send ${messages} messages: ${send.msgsPerSecAlone} msgs/s alone, ${send.msgsPerSecWatched} msgs/s with ${viewers} viewers polling every 2 s (${send.slowdownPercent} % slower; ${send.pollRequests} polls answered)`
          : ''),
    );
    console.log(JSON.stringify(result));
  } finally {
    await herald.close();
    await database.drop();
  }
}

/** A delivery with `logs` logs, most sent over an hour, some failed, some deferred, the rest pending. */
async function seedBig(herald: Herald, logs: number): Promise<number> {
  const now = Date.now();
  const domains = ['gmail.test', 'yahoo.test', 'orange.test', 'free.test', 'corp.test'];
  const { deliveryId } = await seedDelivery(herald.store.db, {
    now: now - 3_600_000,
    recipients: Array.from({ length: logs }, (_, i) => ({ email: `user${i}@${domains[i % domains.length]}` })),
  });
  const db = herald.store.db;
  // Bench fixture: outcomes spread over the hour, as a sending MTA leaves them.
  await db
    .updateTable('delivery_logs')
    .set({
      status: 'sent',
      attempts: 1,
      sent_at: sql`${now - 3_600_000} + (id % 3600) * 1000`,
      mx_host: sql`'mx.' || domain`,
      last_reply_code: 250,
    })
    .where('delivery_id', '=', deliveryId)
    .where(sql<boolean>`id % 10 < 7`)
    .execute();
  await db
    .updateTable('delivery_logs')
    .set({
      status: 'failed',
      attempts: 1,
      updated_at: sql`${now - 3_600_000} + (id % 3600) * 1000`,
      failure_type: 'hard',
      failure_reason: 'user_unknown',
      failure_category: 'userunknown',
      mx_host: sql`'mx.' || domain`,
      last_reply_code: 550,
      last_reply_text: '5.1.1 user unknown',
    })
    .where('delivery_id', '=', deliveryId)
    .where(sql<boolean>`id % 10 = 7`)
    .execute();
  await db
    .updateTable('delivery_logs')
    .set({ attempts: 1, updated_at: sql`${now - 600_000} + (id % 600) * 1000`, failure_reason: 'mailbox_full' })
    .where('delivery_id', '=', deliveryId)
    .where(sql<boolean>`id % 10 = 8`)
    .execute();
  return deliveryId;
}

async function pageFigures(herald: Herald, logs: number) {
  const seedStart = performance.now();
  const deliveryId = await seedBig(herald, logs);
  const seedSeconds = (performance.now() - seedStart) / 1000;
  const { token } = await createToken(herald.store, { role: 'viewer' }, Date.now());
  const cold: number[] = [];
  const warm: number[] = [];
  const tickDb: number[] = [];
  const etaDb: number[] = [];
  const doctorDb: number[] = [];
  for (let i = 0; i < 3; i += 1) {
    // A fresh app each round: nothing cached, the page reads the tick (counts, throughput,
    // failures) and the indicators; the ETA and the doctor start loading behind it (measured below).
    const ticks = createLiveTicks({ herald });
    const { app } = buildApiApp({ herald, liveTicks: ticks });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    const web = createWebClient(url);
    await web.signIn(token);
    // Server time (the Server-Timing header): the client shares this process's event loop.
    const serverMs = (answer: { headers: Headers }) =>
      Number(/dur=([\d.]+)/.exec(answer.headers.get('server-timing') ?? '')?.[1] ?? Number.NaN);
    const first = await web.get(`/ui/deliveries/${deliveryId}`);
    cold.push(serverMs(first));
    if (first.status !== 200) throw new Error(`delivery page answered ${first.status}`);
    // The ETA and the doctor the first view started behind it (measured on their own below).
    await Promise.all([ticks.eta.get(deliveryId), ticks.findings.get(deliveryId)]);
    warm.push(serverMs(await web.get(`/ui/deliveries/${deliveryId}`)));
    // One live tick as the cache loads it: the shared reads of a 2-second refresh, on warm
    // connections (as while browsers poll): a first tick of another cache opens them.
    await createLiveTicks({ herald }).tick.get(deliveryId);
    const fresh = createLiveTicks({ herald });
    let started = performance.now();
    await fresh.tick.get(deliveryId);
    tickDb.push(performance.now() - started);
    // The slow reads, every 15 s or less often (20 × their duration): the ETA and the doctor.
    started = performance.now();
    await fresh.eta.get(deliveryId);
    etaDb.push(performance.now() - started);
    started = performance.now();
    await fresh.findings.get(deliveryId);
    doctorDb.push(performance.now() - started);
    await app.close();
  }
  return {
    seedSeconds: Number(seedSeconds.toFixed(1)),
    pageColdMs: round(median(cold)),
    pageWarmMs: round(median(warm)),
    tickDbMs: round(median(tickDb)),
    etaDbMs: round(median(etaDb)),
    doctorDbMs: round(median(doctorDb)),
  };
}

async function sendOnce(herald: Herald, port: number, messages: number, viewers: number) {
  const { deliveryId } = await seedDelivery(herald.store.db, {
    now: Date.now(),
    recipients: Array.from({ length: messages }, (_, i) => ({
      email: `user${i}@bench.test`,
      data: { first_name: `F${i}` },
    })),
  });
  const config = configSchema.parse({
    mta: {
      heloName: 'bench.herald.test',
      bounceDomain: 'bounces.brand.test',
      routes: [{ match: 'bench.test', host: '127.0.0.1', port }],
      maxConnectionsPerMx: 10,
      pollIntervalMs: 200,
    },
  }).mta;
  const mta = createMta({
    store: createMtaStore(herald.store),
    nodeId: `bench-${deliveryId}`,
    config,
    dkimKeys: new Map(),
  });
  let polls = 0;
  let watching = viewers > 0;
  const { token } = await createToken(herald.store, { role: 'viewer' }, Date.now());
  const { app } = buildApiApp({ herald });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const clients = await Promise.all(
    Array.from({ length: viewers }, async () => {
      const web = createWebClient(url);
      await web.signIn(token);
      return web;
    }),
  );
  // Each viewer polls like htmx does: the live region every 2 s, staggered, the doctor region every 15 s.
  const pollers = clients.map(async (web, i) => {
    let own = 0;
    await new Promise((resolve) => setTimeout(resolve, (2_000 * i) / Math.max(viewers, 1)));
    while (watching) {
      const answer = await web.get(`/ui/deliveries/${deliveryId}/live`);
      if (answer.status !== 200) throw new Error(`live answered ${answer.status}`);
      polls += 1;
      own += 1;
      if (own % 8 === 0) {
        const doctor = await web.get(`/ui/deliveries/${deliveryId}/doctor`);
        if (doctor.status !== 200) throw new Error(`doctor region answered ${doctor.status}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  });
  const started = performance.now();
  await mta.start();
  await mta.drain();
  const seconds = (performance.now() - started) / 1000;
  const sent = mta.stats().sent;
  await mta.stop();
  watching = false;
  await Promise.all(pollers);
  await app.close();
  return { msgsPerSec: Math.round(sent / seconds), polls };
}

async function sendFigures(herald: Herald, messages: number, viewers: number) {
  const child = fork(fileURLToPath(import.meta.url), ['--sink'], { execArgv: ['--import', 'tsx'] });
  try {
    const port = await new Promise<number>((resolve) =>
      child.once('message', (message) => resolve((message as { port: number }).port)),
    );
    // A warm-up run (JIT, connections, page cache), then alone and watched in turn, twice.
    await sendOnce(herald, port, messages, 0);
    const alone: number[] = [];
    const watched: number[] = [];
    let polls = 0;
    for (let round = 0; round < 2; round += 1) {
      alone.push((await sendOnce(herald, port, messages, 0)).msgsPerSec);
      const run = await sendOnce(herald, port, messages, viewers);
      watched.push(run.msgsPerSec);
      polls += run.polls;
    }
    child.send('stop');
    await new Promise((resolve) => child.once('message', resolve));
    const mean = (values: number[]) => Math.round(values.reduce((sum, v) => sum + v, 0) / values.length);
    return {
      msgsPerSecAlone: mean(alone),
      msgsPerSecWatched: mean(watched),
      slowdownPercent: Math.round((1 - mean(watched) / mean(alone)) * 1000) / 10,
      pollRequests: polls,
    };
  } finally {
    if (child.connected) child.kill();
  }
}
