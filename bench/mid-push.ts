// Pushes an N-recipient prepared delivery from a marketing instance to an execution instance over
// loopback HTTP (both on SQLite, each its own database file; no MTA) and prints recipients/s, the
// per-part build and append figures, and peak RSS. Prints figures; never passes or fails on time.
//
//   node --import tsx bench/mid-push.ts [recipients=1000000] [partSize=5000] [inFlight=3]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { systemClock } from '../src/common/clock.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer } from '../src/midsourcing/execution-server.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { outboundStatuses } from '../src/midsourcing/status.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';

const recipients = Number(process.argv[2] ?? 1_000_000);
const partSize = Number(process.argv[3] ?? 5_000);
const inFlight = Number(process.argv[4] ?? 3);
const secret = 'bench-shared-secret-0123456789abcdef';

async function seedPrepared(store: Store, n: number): Promise<number> {
  const now = Date.now();
  const delivery = await store.db
    .insertInto('deliveries')
    .values({
      name: 'bench',
      state: 'prepared',
      from_address: 'news@brand.test',
      from_name: 'Brand',
      reply_to: null,
      subject_template: 'Hello {{ first_name }}',
      html_template: '<p>Hello {{ first_name }}, your code is {{ code }}</p>',
      text_template: null,
      list_id: null,
      affinity: null,
      validity_seconds: 86_400,
      target_count: n,
      created_at: now,
      updated_at: now,
      prepared_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  const chunk = 100_000;
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk);
    await sql`
      with recursive seq(i) as (select ${from} union all select i + 1 from seq where i + 1 < ${to})
      insert into delivery_logs (delivery_id, recipient_id, email, domain, data, status, attempts, next_attempt_at, updated_at)
      select ${delivery.id}, i + 1, 'user' || i || '@domain' || (i % 500) || '.test', 'domain' || (i % 500) || '.test',
             '{"first_name":"Name' || i || '","code":"' || hex(randomblob(4)) || '"}', 'pending', 0, 0, ${now}
      from seq`.execute(store.db);
  }
  return Number(delivery.id);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'herald-mid-bench-'));
  const marketing = openStore(`sqlite:${join(dir, 'marketing.db')}`);
  const execution = openStore(`sqlite:${join(dir, 'execution.db')}`);
  try {
    await migrateToLatest(marketing);
    await migrateToLatest(execution);
    const seedStarted = performance.now();
    const deliveryId = await seedPrepared(marketing, recipients);
    console.log(`seeded ${recipients} delivery logs in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s`);

    const server = await startExecutionServer({
      store: execution,
      config: { ...defaultMidsourcingConfig(), mode: 'execution', peers: [{ name: 'marketing', secret }] },
      host: '127.0.0.1',
      port: 0,
    });
    const client = createPeerClient({
      peer: { name: 'exec', url: server.url, secret },
      localName: 'marketing',
      timeoutMs: 60_000,
    });
    const started = performance.now();
    const result = await pushDelivery({
      store: marketing,
      client,
      deliveryId,
      partSize,
      inFlight,
      retry: { maxAttempts: 5, baseMs: 200, maxMs: 2_000 },
      clock: systemClock,
    });
    const seconds = (performance.now() - started) / 1000;
    const [status] = await outboundStatuses(marketing, deliveryId);
    client.close();
    await server.close();
    const received = await execution.db
      .selectFrom('delivery_logs')
      .select(sql<number>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    console.log(
      `pushed ${result.recipients} recipients in ${result.parts} parts of ${partSize}, ${inFlight} in flight: ${seconds.toFixed(1)} s, ${Math.round(result.recipients / seconds)} recipients/s`,
    );
    console.log(
      `execution side holds ${received.n} delivery logs; attempts ${result.attempts}, timeouts ${result.timeouts}`,
    );
    console.log(
      `per part: build avg ${status!.buildMs.avg} / p95 ${status!.buildMs.p95} ms; append avg ${status!.appendMs.avg} / p95 ${status!.appendMs.p95} ms; ${status!.diagnosis}`,
    );
    console.log(`peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB (both instances in this process)`);
  } finally {
    await marketing.close();
    await execution.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
