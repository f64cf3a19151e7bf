// Webhook outbox benchmark: N events in the outbox of one subscription (written by one bulk INSERT …
// SELECT), sent by the dispatcher (batches of webhooks.batchSize, signed) to a loopback receiver in
// a child process that verifies every signature (HMAC-SHA256 over "<timestamp>.<body>") and counts
// events; measures events/s from the first request to the empty outbox.
// Run: node --import tsx bench/webhooks.ts [--dialect sqlite|postgres] [--events 100000] [--batch 500]
// Prints figures (text and one JSON line); it never passes or fails on time.
import { fork } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { systemClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { webhooksSchema } from '../src/webhooks/config-schema.ts';
import { createWebhookDispatcher } from '../src/webhooks/dispatcher.ts';
import { insertSubscription } from '../src/webhooks/webhook-store.ts';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';

const secret = 'bench-webhook-secret-0123456789';

if (process.argv[2] === '--receiver') {
  let events = 0;
  let refused = 0;
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const timestamp = String(request.headers['x-herald-timestamp']);
      const expected = Buffer.from(
        `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`,
      );
      const given = Buffer.from(String(request.headers['x-herald-signature']));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        refused++;
        response.writeHead(401).end();
        return;
      }
      events += (JSON.parse(body.toString('utf8')) as { events: unknown[] }).events.length;
      response.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.once('message', () => {
    server.close();
    process.send!({ events, refused }, () => process.disconnect());
  });
} else {
  await main();
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

async function main(): Promise<void> {
  const dialect = option('dialect', 'sqlite') as 'sqlite' | 'postgres';
  const events = Number(option('events', '100000'));
  const batchSize = Number(option('batch', '500'));
  const database = await createScratchDatabase(dialect, 'bench_webhooks');
  const store = openStore(database.url);
  const child = fork(fileURLToPath(import.meta.url), ['--receiver'], { execArgv: ['--import', 'tsx'] });
  try {
    await migrateToLatest(store);
    const port = await new Promise<number>((resolve) =>
      child.once('message', (message) => resolve((message as { port: number }).port)),
    );
    const subscription = await insertSubscription(store, {
      url: `http://127.0.0.1:${port}/hook`,
      events: ['message.sent'],
      secret,
      now: Date.now(),
    });
    const now = Date.now();
    const payload = `'{"deliveryId":1,"logId":' || n || ',"recipientId":null,"email":"user' || n || '@example.com","mxHost":"mx.example.com","replyCode":250,"attempts":1,"at":${now}}'`;
    const select = `select ${subscription.id}, 'message.sent', ${payload}, ${now}, 0, ${now}`;
    const columns = 'subscription_id, kind, payload, created_at, attempts, next_attempt_at';
    if (dialect === 'postgres')
      await sql
        .raw(`insert into webhook_outbox (${columns}) ${select} from generate_series(1, ${events}) as g(n)`)
        .execute(store.db);
    else
      await sql
        .raw(
          `insert into webhook_outbox (${columns}) with recursive g(n) as (select 1 union all select n + 1 from g where n < ${events}) ${select} from g`,
        )
        .execute(store.db);

    const dispatcher = createWebhookDispatcher({
      store,
      config: webhooksSchema.parse({ batchSize, allowedNetworks: ['127.0.0.1/32'] }),
      clock: systemClock,
      logger: silentLogger,
    });
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let delivered = 0;
    while (delivered < events) {
      const sent = await dispatcher.runOnce();
      if (sent === 0) break;
      delivered += sent;
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    child.send('stop');
    const receiver = await new Promise<{ events: number; refused: number }>((resolve) =>
      child.once('message', (message) => resolve(message as { events: number; refused: number })),
    );
    const result = {
      bench: 'webhooks',
      dialect,
      events,
      batchSize,
      delivered,
      received: receiver.events,
      refused: receiver.refused,
      seconds: Number(seconds.toFixed(2)),
      eventsPerSec: Math.round(delivered / seconds),
      dispatcherCpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
    };
    console.log(
      `webhooks [${dialect}, batches of ${batchSize}]: ${delivered} of ${events} events in ${result.seconds} s = ${result.eventsPerSec} events/s (receiver verified ${receiver.events}, refused ${receiver.refused}; dispatcher CPU ${result.dispatcherCpuSeconds} s)`,
    );
    console.log(JSON.stringify(result));
  } finally {
    if (child.connected) child.kill();
    await store.close();
    await database.drop();
  }
}
