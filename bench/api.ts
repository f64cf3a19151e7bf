// API benchmark: list endpoints on a delivery with 1M delivery logs (built by one bulk INSERT … SELECT
// in the database, not row by row), over real HTTP on a listening API, sequential requests:
//   - GET /deliveries/{id}/logs, keyset pages of 100 walked from the start (`after` = previous `next`),
//     unfiltered and filtered by status=failed and by domain
//   - GET /deliveries (the deliveries list) and GET /deliveries/{id} (the summary)
// Prints p50/p99/max per endpoint (text and one JSON line); it never passes or fails on time.
// Run: node --import tsx bench/api.ts [--dialect sqlite|postgres] [--logs 1000000] [--requests 300]
import { sql } from 'kysely';
import { buildApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const dialect = option('dialect', 'sqlite') as 'sqlite' | 'postgres';
const logs = Number(option('logs', '1000000'));
const requests = Number(option('requests', '300'));
if (!['sqlite', 'postgres'].includes(dialect) || !(logs > 0) || !(requests > 0))
  throw new Error('usage: bench/api.ts [--dialect sqlite|postgres] [--logs 1000000] [--requests 300]');

const database = await createScratchDatabase(dialect, 'bench_api');
const herald = await openHerald({
  config: parseConfig({ database: { url: database.url } }, 'bench'),
  logger: silentLogger,
});
try {
  const now = Date.now();
  const seedStart = performance.now();
  const deliveryIds: number[] = [];
  for (let i = 0; i < 20; i++) {
    const row = await herald.store.db
      .insertInto('deliveries')
      .values({
        name: `bench ${i}`,
        state: i === 0 ? 'in_progress' : 'finished',
        from_address: 'news@brand.test',
        from_name: null,
        reply_to: null,
        subject_template: 'Hello',
        html_template: '<p>Hello</p>',
        text_template: null,
        validity_seconds: 86_400,
        valid_until: now + 86_400_000,
        target_count: i === 0 ? logs : 0,
        excluded_count: 0,
        exclusions: '{}',
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    deliveryIds.push(Number(row.id));
  }
  const deliveryId = deliveryIds[0]!;
  // 90 % sent, 5 % failed (4 reasons), 4 % pending (some retrying), 1 % ignored; 50 domains; 10 % retried.
  const status = `case when n % 100 < 90 then 'sent' when n % 100 < 95 then 'failed' when n % 100 < 99 then 'pending' else 'ignored' end`;
  const reason = `case when n % 100 >= 90 and n % 100 < 99 then (case n % 4 when 0 then 'user_unknown' when 1 then 'mailbox_full' when 2 then 'refused' else 'unreachable' end) else null end`;
  const select = `select ${deliveryId}, null, 'user' || n || '@domain' || (n % 50) || '.test', 'domain' || (n % 50) || '.test',
      '{"first_name":"F"}', ${status}, case when n % 10 = 0 then 2 else 1 end, ${now}, ${reason}, ${now}`;
  const columns =
    'delivery_id, recipient_id, email, domain, data, status, attempts, next_attempt_at, failure_reason, updated_at';
  if (dialect === 'postgres')
    await sql
      .raw(`insert into delivery_logs (${columns}) ${select} from generate_series(1, ${logs}) as g(n)`)
      .execute(herald.store.db);
  else
    await sql
      .raw(
        `insert into delivery_logs (${columns}) with recursive g(n) as (select 1 union all select n + 1 from g where n < ${logs}) ${select} from g`,
      )
      .execute(herald.store.db);
  if (dialect === 'postgres') await sql.raw('vacuum analyze delivery_logs').execute(herald.store.db);
  else await sql.raw('analyze').execute(herald.store.db);
  const seedSeconds = (performance.now() - seedStart) / 1000;

  const { token } = await createToken(herald.store, { role: 'viewer' }, now);
  const api = buildApiApp({ herald });
  const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  const get = async (path: string) => {
    const started = performance.now();
    const response = await fetch(`${url}/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { next?: string | number | null };
    if (response.status !== 200) throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - started, body };
  };
  const measure = async (name: string, paths: () => string) => {
    const times: number[] = [];
    for (let i = 0; i < requests; i++) times.push((await get(paths())).ms);
    times.sort((a, b) => a - b);
    const at = (q: number) => Number(times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1));
    return { name, requests, p50: at(0.5), p99: at(0.99), max: at(1) };
  };
  const keyset = (filter: string) => {
    let after: string | number | null | undefined = null;
    return async () => {
      const { ms, body } = await get(
        `/deliveries/${deliveryId}/logs?limit=100${filter}${after ? `&after=${after}` : ''}`,
      );
      after = body.next ?? null;
      return ms;
    };
  };
  const walk = async (name: string, filter: string) => {
    const page = keyset(filter);
    const times: number[] = [];
    for (let i = 0; i < requests; i++) times.push(await page());
    times.sort((a, b) => a - b);
    const at = (q: number) => Number(times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(1));
    return { name, requests, p50: at(0.5), p99: at(0.99), max: at(1) };
  };
  // Warm-up: the first request compiles the route's serializers.
  await get(`/deliveries/${deliveryId}`);
  const results = [
    await walk('logs (keyset pages of 100)', ''),
    await walk('logs status=failed', '&status=failed'),
    await walk('logs domain=domain7.test', '&domain=domain7.test'),
    await measure('deliveries list', () => '/deliveries'),
    await measure('delivery summary', () => `/deliveries/${deliveryId}`),
  ];
  await api.app.close();
  for (const r of results)
    console.log(
      `api [${dialect}, ${logs} logs] ${r.name}: p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms (${r.requests} requests)`,
    );
  console.log(`seeding took ${seedSeconds.toFixed(1)} s`);
  console.log(JSON.stringify({ bench: 'api', dialect, logs, seedSeconds: Number(seedSeconds.toFixed(1)), results }));
} finally {
  await herald.close();
  await database.drop();
}
