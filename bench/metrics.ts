// /metrics scrape benchmark: a process whose registry has seen outcomes, SMTP timings and DKIM
// signatures for 100 active domains (100 MX hosts; --domains for more), with a queue of pending logs
// due now spread over those domains (one bulk INSERT … SELECT), scraped over real HTTP on the metrics port.
// Every scrape reads the database (metrics.cacheSeconds 0: the worst case, a scraper slower than the
// cache) unless --cache-seconds says otherwise. Prints p50/p99/max (text and one JSON line), and the
// median time of the due-logs-by-domain read alone.
// With a cache, --interval-ms spaces the scrapes so that the cached value goes stale during the run
// (a stale value is served while it is refreshed behind the scrape).
// Run: node --import tsx bench/metrics.ts [--dialect sqlite|postgres] [--queue 100000] [--domains 100] [--scrapes 200] [--cache-seconds 0] [--interval-ms 0]
import { sql } from 'kysely';
import { parseSmtpReply } from '../src/bounce/smtp-reply.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { dueByDomain } from '../src/metrics/metrics-store.ts';
import { startMetricsServer } from '../src/metrics/server.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const dialect = option('dialect', 'sqlite') as 'sqlite' | 'postgres';
const queue = Number(option('queue', '100000'));
const scrapes = Number(option('scrapes', '200'));
const cacheSeconds = Number(option('cache-seconds', '0'));
const intervalMs = Number(option('interval-ms', '0'));
const domains = Number(option('domains', '100'));

const database = await createScratchDatabase(dialect, 'bench_metrics');
const herald = await openHerald({
  config: parseConfig({ database: { url: database.url }, metrics: { cacheSeconds } }, 'bench'),
  logger: silentLogger,
});
try {
  const now = Date.now();
  const delivery = await herald.store.db
    .insertInto('deliveries')
    .values({
      name: 'bench',
      state: 'in_progress',
      from_address: 'news@brand.test',
      from_name: null,
      reply_to: null,
      subject_template: 'Hello',
      html_template: '<p>Hello</p>',
      text_template: null,
      validity_seconds: 86_400,
      valid_until: now + 86_400_000,
      target_count: queue,
      excluded_count: 0,
      exclusions: '{}',
      created_at: now,
      updated_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const select = `select ${delivery.id}, 'user' || n || '@domain' || (n % ${domains}) || '.test', 'domain' || (n % ${domains}) || '.test', '{}', 'pending', 0, ${now - 1_000}, ${now}`;
  const columns = 'delivery_id, email, domain, data, status, attempts, next_attempt_at, updated_at';
  if (dialect === 'postgres')
    await sql
      .raw(`insert into delivery_logs (${columns}) ${select} from generate_series(1, ${queue}) as g(n)`)
      .execute(herald.store.db);
  else
    await sql
      .raw(
        `insert into delivery_logs (${columns}) with recursive g(n) as (select 1 union all select n + 1 from g where n < ${queue}) ${select} from g`,
      )
      .execute(herald.store.db);
  await sql.raw(dialect === 'postgres' ? 'vacuum analyze delivery_logs' : 'analyze').execute(herald.store.db);
  // The costliest read of a refresh on its own: the due logs by domain (herald_queue_due), median of 9.
  const dueTimes: number[] = [];
  for (let i = 0; i < 9; i++) {
    const started = performance.now();
    await dueByDomain(herald.store, Date.now());
    dueTimes.push(performance.now() - started);
  }
  const dueQueryMs = Number(dueTimes.sort((a, b) => a - b)[4]!.toFixed(1));
  // What an MTA's registry has seen after a while: every domain's MX host, sent and failed outcomes.
  const timings = herald.metrics.mtaTimings;
  for (let d = 0; d < domains; d++) {
    const mxHost = `mx${d}.domain${d}.test`;
    for (let i = 0; i < 20; i++) {
      timings.smtpSession(mxHost, 0.02 + i / 1000, true);
      timings.smtpTransaction(mxHost, 0.05 + i / 1000);
      timings.dkimSigning(0.001);
    }
    herald.metrics.observeOutcomes([
      { kind: 'sent', logId: d, deliveryId: 1, email: 'x@y', mxHost, at: now, reply: parseSmtpReply('250 OK') },
    ]);
  }
  const server = await startMetricsServer(herald, 0);
  const times: number[] = [];
  let bytes = 0;
  // CPU time of this process (server and client share it) per scrape: steadier than wall time on a
  // busy machine, and on SQLite the whole read runs on the event loop.
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < scrapes; i++) {
    const started = performance.now();
    const text = await (await fetch(`${server.url}/metrics`)).text();
    times.push(performance.now() - started);
    bytes = text.length;
    if (intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  const cpu = process.cpuUsage(cpuBefore);
  const cpuPerScrape = Number(((cpu.user + cpu.system) / 1000 / scrapes).toFixed(1));
  await server.close();
  times.sort((a, b) => a - b);
  const at = (q: number) => Number(times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1));
  const result = {
    bench: 'metrics',
    dialect,
    domains,
    queue,
    cacheSeconds,
    scrapes,
    intervalMs,
    bytes,
    cpuPerScrape,
    dueQueryMs,
    p50: at(0.5),
    p99: at(0.99),
    max: at(1),
  };
  console.log(
    `metrics [${dialect}, ${domains} domains, ${queue} pending due, cache ${cacheSeconds} s]: scrape p50 ${result.p50} ms, p99 ${result.p99} ms, max ${result.max} ms, CPU ${cpuPerScrape} ms per scrape, due logs by domain ${dueQueryMs} ms (${scrapes} scrapes ${intervalMs} ms apart, ${bytes} bytes)`,
  );
  console.log(JSON.stringify(result));
} finally {
  await herald.close();
  await database.drop();
}
