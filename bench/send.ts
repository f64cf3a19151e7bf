// MTA send benchmark: 50,000 prepared, personalized ~2 KB messages (HTML + text) from one
// delivery to a loopback sink, through the real MTA (claims, rendering, MIME, DKIM, SMTP, outcome
// writes). The sink runs in a child process so it does not share the MTA's event loop.
// Run: node --import tsx bench/send.ts [--dialect sqlite|postgres] [--dkim none|rsa|ed25519|rsa+ed25519] [--rules none|open] [--redis URL]
//      [--messages 50000] [--workers N (DKIM worker threads)] [--connections 10] [--flush-ms 10]
//      [--api off|on] (on: this process also runs the api role with /metrics, the MTA feeds the metrics
//      registry — outcomes, SMTP and DKIM timings — and a scraper reads /metrics every --scrape-ms 1000; 0 = none)
//      [--close-grace-ms N (mta.connectionCloseGraceMs; default: the product's)]
//      [--webhook none|KIND] (an active webhook subscription to KIND, e.g. message.sent: its outbox rows are written with each outcome)
//      [--domains 1] (recipient domains, round-robin in list order; all routed to the sink)
//      [--sink herald|postfix] (herald: the simulator's sink in a Node child process, default; postfix: Postfix's
//      smtp-sink, the C sink `smtp-source` is measured against in ../shared/bench/postfix-peer — Debian package postfix)
// Prints figures (text and one JSON line); it never passes or fails on time.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/common/logger.ts';
import { configSchema } from '../src/config/schema.ts';
import { parseDkimKey, type DkimKey } from '../src/mta/dkim.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createMtaShaping } from '../src/shaping/mta-shaping.ts';
import { startSmtpSink } from '../src/sim/smtp-sink.ts';
import { openStore } from '../src/store/database.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { insertSubscription } from '../src/webhooks/webhook-store.ts';
import { startApiServer } from '../src/api/server.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { benchContent as content, benchRecipients } from './support/bench-content.ts';
import { performance as nodePerformance } from 'node:perf_hooks';
import { machineCpuWindow } from './support/machine-cpu.ts';

if (process.argv[2] === '--sink') {
  const sink = await startSmtpSink({ hostname: 'mx.bench.test', trackRecipients: false });
  process.send!({ port: sink.port });
  process.once('message', async () => {
    const report = {
      accepted: sink.stats().messagesAccepted,
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    await sink.close();
    process.send!(report, () => process.disconnect());
  });
} else {
  await main();
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

async function main(): Promise<void> {
  const dialect = option('dialect', 'sqlite');
  const dkim = option('dkim', 'none');
  const messages = Number(option('messages', '50000'));
  const workers = Number(option('workers', '0'));
  const connections = Number(option('connections', '10'));
  const domains = Number(option('domains', '1'));
  const flushMs = Number(option('flush-ms', '10'));
  const closeGraceMs = option('close-grace-ms', '');
  // --rules open: MX rules, leases, permits, counters and affinity choice on every message, with
  // limits that never bind (the cost of shaping itself); --redis URL puts the throttle in Redis.
  const rules = option('rules', 'none');
  const redisUrl = option('redis', '');
  const webhook = option('webhook', 'none');
  const apiRole = option('api', 'off');
  const scrapeMs = Number(option('scrape-ms', '1000'));
  if (
    !['sqlite', 'postgres'].includes(dialect) ||
    !['none', 'rsa', 'ed25519', 'rsa+ed25519'].includes(dkim) ||
    !['none', 'open'].includes(rules)
  ) {
    throw new Error(
      'usage: bench/send.ts [--dialect sqlite|postgres] [--dkim none|rsa|ed25519|rsa+ed25519] [--messages N] [--workers N] [--rules none|open] [--redis URL]',
    );
  }

  const sinkKind = option('sink', 'herald');
  if (!['herald', 'postfix'].includes(sinkKind)) throw new Error('--sink must be herald or postfix');
  const database = await createScratchDatabase(dialect as 'sqlite' | 'postgres', 'bench_send');
  const store = openStore(database.url);
  const { child, port } = sinkKind === 'postfix' ? await startPostfixSink() : await startHeraldSink();
  try {
    await migrateToLatest(store);
    const seedStart = performance.now();
    await seedDelivery(store.db, {
      now: Date.now(),
      recipients: benchRecipients(messages, 'bench.test').map((recipient, i) =>
        domains > 1 ? { ...recipient, email: recipient.email.replace('@', `@d${i % domains}.`) } : recipient,
      ),
      ...content(),
    });
    if (webhook !== 'none')
      await insertSubscription(store, {
        url: 'http://127.0.0.1:9/bench',
        events: [webhook],
        secret: 'bench-secret-0123456789',
        now: Date.now(),
      });
    const seedSeconds = (performance.now() - seedStart) / 1000;

    const config = configSchema.parse({
      mta: {
        heloName: 'bench.herald.test',
        bounceDomain: 'bounces.brand.test',
        routes:
          domains > 1
            ? Array.from({ length: domains }, (_, k) => ({ match: `d${k}.bench.test`, host: '127.0.0.1', port }))
            : [{ match: 'bench.test', host: '127.0.0.1', port }],
        maxConnectionsPerMx: connections,
        dkimWorkers: workers,
        pollIntervalMs: 200,
        ...(closeGraceMs ? { connectionCloseGraceMs: Number(closeGraceMs) } : {}),
      },
    }).mta;
    const shaping = rules === 'open' ? await openShaping(config, connections, redisUrl) : undefined;
    const herald =
      apiRole === 'on'
        ? await openHerald({ config: parseConfig({ database: { url: database.url } }, 'bench'), logger: silentLogger })
        : undefined;
    const api = herald ? await startApiServer(herald, 0) : undefined;
    let scrapes = 0;
    const scraper =
      api && scrapeMs > 0
        ? setInterval(() => {
            void fetch(`${api.url}/metrics`)
              .then((response) => response.text())
              .then(() => scrapes++);
          }, scrapeMs)
        : undefined;
    const mta = createMta({
      store: createMtaStore(store),
      nodeId: 'bench',
      config,
      dkimKeys: dkimKeys(dkim),
      outcomeFlushIntervalMs: flushMs,
      shaping: shaping?.mta,
      ...(herald && {
        onOutcomes: (outcomes) => herald.metrics.observeOutcomes(outcomes),
        timings: herald.metrics.mtaTimings,
      }),
    });
    const cpuBefore = process.cpuUsage();
    const machineWindow = machineCpuWindow();
    const loopBefore = nodePerformance.eventLoopUtilization();
    const started = performance.now();
    await mta.start();
    await mta.drain();
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const machine = machineWindow();
    const loop = nodePerformance.eventLoopUtilization(loopBefore);
    const stats = mta.stats();
    await mta.stop();
    await shaping?.runtime.stop();
    if (scraper) clearInterval(scraper);
    await api?.close();
    await herald?.close();
    const sink = await stopSink(child, sinkKind);
    const rowsOf = async (table: 'webhook_outbox' | 'delivery_domain_counts') =>
      Number(
        (
          await store.db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const outboxRows = await rowsOf('webhook_outbox');
    // Rows a reader of the counter by domain sums at the end (PostgreSQL appends deltas; MTAs fold them).
    const domainCounterRows = await rowsOf('delivery_domain_counts');
    const result = {
      bench: 'send',
      dialect,
      domains,
      domainCounterRows,
      webhook,
      outboxRows,
      api: apiRole,
      scrapes,
      dkim,
      dkimWorkers: workers,
      connections,
      sink: sinkKind,
      rules,
      throttle: rules === 'none' ? 'none' : redisUrl ? 'redis' : 'memory',
      outcomeFlushIntervalMs: flushMs,
      connectionCloseGraceMs: config.connectionCloseGraceMs,
      messages,
      sent: stats.sent,
      sinkAccepted: sink.accepted,
      seconds: Number(seconds.toFixed(2)),
      msgsPerSec: Math.round(stats.sent / seconds),
      mtaCpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
      mtaCpuMsPerMessage: Number(((cpu.user + cpu.system) / 1e3 / Math.max(stats.sent, 1)).toFixed(3)),
      // Every process and the kernel during the send (the sink, DKIM threads, the loopback's work):
      // idle near 0 means the machine, not Herald, set the rate.
      machineBusyCpuSeconds: machine.busySeconds,
      machineIdleCpuSeconds: machine.idleSeconds,
      machineCpuMsPerMessage: Number(((machine.busySeconds * 1e3) / Math.max(stats.sent, 1)).toFixed(3)),
      // The share of the send the MTA's event loop was busy: near 1, its one thread set the rate.
      mainThreadUtilization: Number(loop.utilization.toFixed(2)),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      sinkPeakRssMiB: sink.peakRssMiB,
      seedSeconds: Number(seedSeconds.toFixed(2)),
    };
    console.log(
      `send [${dialect}, dkim ${dkim}${workers ? `, ${workers} signing worker(s)` : ''}, rules ${rules}${rules === 'open' ? ` (${result.throttle})` : ''}, webhook ${webhook}, sink ${sinkKind}, close grace ${result.connectionCloseGraceMs} ms, api ${apiRole}]: ${result.sent} of ${messages} messages to ${domains} domain(s) in ${result.seconds} s = ${result.msgsPerSec} msgs/s ` +
        `(MTA CPU ${result.mtaCpuSeconds} s = ${result.mtaCpuMsPerMessage} ms per message, peak RSS ${result.peakRssMiB} MiB; sink accepted ${sink.accepted}, sink RSS ${sink.peakRssMiB} MiB; seeding took ${result.seedSeconds} s)`,
    );
    console.log(JSON.stringify(result));
  } finally {
    if (child.exitCode === null) child.kill();
    await store.close();
    await database.drop();
  }
}

function dkimKeys(kind: string): Map<string, DkimKey[]> {
  const keys: DkimKey[] = [];
  if (kind === 'rsa' || kind === 'rsa+ed25519') {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    keys.push(
      parseDkimKey(
        { domain: 'brand.test', selector: 'rsa', privateKeyFile: 'generated', algorithm: 'rsa-sha256' },
        () => rsa,
      ),
    );
  }
  if (kind === 'ed25519' || kind === 'rsa+ed25519') {
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    keys.push(
      parseDkimKey(
        { domain: 'brand.test', selector: 'ed', privateKeyFile: 'generated', algorithm: 'ed25519-sha256' },
        () => ed,
      ),
    );
  }
  return new Map(keys.length ? [['brand.test', keys]] : []);
}

/** Shaping whose limits never bind: measures what the wiring itself costs per message. */
async function openShaping(mta: ReturnType<typeof configSchema.parse>['mta'], connections: number, redisUrl: string) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-bench-rules-'));
  const file = join(dir, 'rules.yaml');
  writeFileSync(
    file,
    `rules:\n  - name: generic\n    mask: "*"\n    maxConnections: ${connections}\n    maxMessagesPerHour: 100000000\n    maxMessagesPerConnection: ${mta.maxMessagesPerConnection}\n`,
  );
  const shaping = configSchema.parse({
    shaping: { rulesFiles: [file], redisUrl, redisKeyPrefix: `herald:bench:${process.pid}:` },
  }).shaping;
  return await createMtaShaping({
    config: shaping,
    mta,
    clock: { now: () => Date.now() },
    logger: silentLogger,
    nodeId: 'bench',
  });
}

async function startHeraldSink(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--sink'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (message) => resolve((message as { port: number }).port)),
  );
  return { child, port };
}

/** Postfix's smtp-sink on a free loopback port (PIPELINING on, as smtp-sink offers it by default). */
async function startPostfixSink(): Promise<{ child: ChildProcess; port: number }> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const child = spawn('smtp-sink', [...user, `127.0.0.1:${port}`, '1024'], { stdio: 'ignore' });
  child.once('error', (error) => {
    throw new Error(`smtp-sink did not start (apt-get install postfix): ${error.message}`);
  });
  for (;;) {
    const listening = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (listening) return { child, port };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The sink's count and peak RSS (smtp-sink keeps neither: the MTA's own count stands for it). */
async function stopSink(
  child: ChildProcess,
  kind: string,
): Promise<{ accepted: number | string; peakRssMiB: number | string }> {
  if (kind === 'postfix') {
    child.kill();
    return { accepted: 'n/a', peakRssMiB: 'n/a' };
  }
  child.send('stop');
  return new Promise((resolve) =>
    child.once('message', (message) => resolve(message as { accepted: number; peakRssMiB: number })),
  );
}
