// Scale-out benchmark (issue 18): N MTA processes on one PostgreSQL database and one Redis, sending
// to the same sink (another process), in three phases:
//   single   one MTA process, limits that never bind: the baseline of the same run;
//   open     N processes, limits that never bind: aggregate msgs/s and each node's share;
//   limited  one MX rule that binds across the nodes (maxMessagesPerHour over a scaled "hour",
//            maxConnections): the achieved aggregate rate against the limit, and the most sessions the
//            sink saw at once against maxConnections.
// Run: node --import tsx bench/scale-out.ts [--nodes 2] [--messages 40000] [--limited-messages 30000]
//      [--rate 10000 (maxMessagesPerHour of the limited rule)] [--period-ms 10000 (its "hour")]
//      [--max-connections 6] [--redis redis://127.0.0.1:6379]
// Prints figures (text and one JSON line); it never passes or fails on time.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../src/common/logger.ts';
import { configSchema } from '../src/config/schema.ts';
import { createMta } from '../src/mta/queue-runner.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createMtaShaping } from '../src/shaping/mta-shaping.ts';
import { startSmtpSink } from '../src/sim/smtp-sink.ts';
import { openStore } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { benchContent, benchRecipients } from './support/bench-content.ts';

interface NodeSetup {
  nodeId: string;
  databaseUrl: string;
  port: number;
  rulesFile: string;
  redisUrl: string;
  redisKeyPrefix: string;
  periodMs: number;
}

interface NodeReport {
  nodeId: string;
  sent: number;
  cpuMs: number;
  peakRssMiB: number;
}

if (process.argv[2] === '--sink') await runSink();
else if (process.argv[2] === '--node') await runNode(JSON.parse(process.argv[3]!) as NodeSetup);
else await main();

async function runSink(): Promise<void> {
  const sink = await startSmtpSink({ hostname: 'mx.bench.test', trackRecipients: false });
  process.send!({ port: sink.port });
  process.once('message', async () => {
    const stats = sink.stats();
    await sink.close();
    process.send!({ accepted: stats.messagesAccepted, maxConcurrentSessions: stats.maxConcurrentSessions }, () =>
      process.disconnect(),
    );
  });
}

/** One MTA process: waits for 'start', sends until told 'stop', reports what it sent. */
async function runNode(setup: NodeSetup): Promise<void> {
  const store = openStore(setup.databaseUrl);
  const config = configSchema.parse({
    mta: {
      heloName: `${setup.nodeId}.herald.test`,
      routes: [{ match: 'bench.test', host: '127.0.0.1', port: setup.port }],
      maxConnectionsPerMx: 20,
      pollIntervalMs: 100,
    },
  }).mta;
  const shaping = await createMtaShaping({
    config: configSchema.parse({
      shaping: {
        rulesFiles: [setup.rulesFile],
        redisUrl: setup.redisUrl,
        redisKeyPrefix: setup.redisKeyPrefix,
        ratePeriodMs: setup.periodMs,
      },
    }).shaping,
    mta: config,
    clock: { now: () => Date.now() },
    logger: silentLogger,
    nodeId: setup.nodeId,
    store,
  });
  const mta = createMta({
    store: createMtaStore(store),
    nodeId: setup.nodeId,
    config,
    logger: silentLogger,
    shaping: shaping.mta,
  });
  let cpuAtStart = process.cpuUsage();
  process.on('message', async (message) => {
    if (message === 'start') {
      cpuAtStart = process.cpuUsage();
      shaping.runtime.start();
      await mta.start();
      return;
    }
    const cpu = process.cpuUsage(cpuAtStart);
    await mta.stop();
    await shaping.runtime.stop();
    await store.close();
    const report: NodeReport = {
      nodeId: setup.nodeId,
      sent: mta.stats().sent,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    process.send!(report, () => process.disconnect());
  });
  process.send!('ready');
}

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

function forkSelf(args: string[]): ChildProcess {
  return fork(fileURLToPath(import.meta.url), args, { execArgv: ['--import', 'tsx'] });
}

/** The child's next message; rejects if it exits first (a node that failed to start stops the bench). */
function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null) =>
      reject(new Error(`a benchmark process exited (code ${code}) before answering`));
    child.once('exit', exited);
    child.once('message', (message) => {
      child.off('exit', exited);
      resolve(message as T);
    });
  });
}

function writeRules(rule: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'herald-scale-')), 'rules.yaml');
  writeFileSync(file, `rules:\n  - name: generic\n    mask: "*"\n${rule}`);
  return file;
}

async function main(): Promise<void> {
  const nodes = Number(option('nodes', '2'));
  const messages = Number(option('messages', '40000'));
  const limitedMessages = Number(option('limited-messages', '30000'));
  const rate = Number(option('rate', '10000'));
  const periodMs = Number(option('period-ms', '10000'));
  const maxConnections = Number(option('max-connections', '6'));
  const redisUrl = option('redis', 'redis://127.0.0.1:6379');
  const database = await createScratchDatabase('postgres', 'bench_scale_out');
  const store = openStore(database.url);
  await migrateToLatest(store);
  const load = loadavg()[0]!;
  try {
    const openRule = `    maxConnections: ${20 * nodes}\n    maxMessagesPerHour: 100000000\n`;
    const single = await phase({ name: 'single', messages, rulesFile: writeRules(openRule), nodeCount: 1 });
    const open = await phase({
      name: 'open',
      messages,
      nodeCount: nodes,
      rulesFile: writeRules(openRule),
    });
    const limited = await phase({
      name: 'limited',
      messages: limitedMessages,
      nodeCount: nodes,
      rulesFile: writeRules(`    maxConnections: ${maxConnections}\n    maxMessagesPerHour: ${rate}\n    burst: 10\n`),
    });
    const sentTimes = limited.sentTimes;
    // Steady state: the first 10 % (connection set-up, the burst) and the last 10 % (the last
    // batches of permits, granted ahead of their time and sent at once) left out.
    const steady = sentTimes.slice(Math.floor(sentTimes.length / 10), Math.ceil((sentTimes.length * 9) / 10));
    const perPeriod = ((steady.length - 1) / (steady.at(-1)! - steady[0]!)) * periodMs;
    const result = {
      bench: 'scale-out',
      nodes,
      loadAverageBefore: Number(load.toFixed(2)),
      singleNode: { messages, seconds: single.seconds, msgsPerSec: Math.round(messages / single.seconds) },
      open: {
        messages,
        seconds: open.seconds,
        msgsPerSec: Math.round(messages / open.seconds),
        perNode: open.reports,
      },
      limited: {
        messages: limitedMessages,
        limitPerPeriod: rate,
        periodMs,
        achievedPerPeriod: Math.round(perPeriod),
        deviationPercent: Number(((perPeriod / rate - 1) * 100).toFixed(1)),
        maxConnections,
        maxConcurrentSessionsAtSink: limited.maxConcurrentSessions,
        perNode: limited.reports,
      },
    };
    const shares = (reports: NodeReport[], total: number) =>
      reports
        .map((r) => `${r.nodeId} ${r.sent} (${((r.sent / total) * 100).toFixed(1)} %, ${r.cpuMs} ms CPU)`)
        .join(', ');
    console.log(
      `scale-out [${nodes} MTA processes, PostgreSQL + Redis, load ${result.loadAverageBefore}]: open limits: 1 node ${result.singleNode.msgsPerSec} msgs/s, ${nodes} nodes ${messages} messages in ${open.seconds} s = ${result.open.msgsPerSec} msgs/s; per node ${shares(open.reports, messages)}`,
    );
    console.log(
      `  limited rule (maxMessagesPerHour ${rate} per ${periodMs} ms, maxConnections ${maxConnections}): ${result.limited.achievedPerPeriod} per period (${result.limited.deviationPercent} %), at most ${limited.maxConcurrentSessions} sessions at the sink; per node ${shares(limited.reports, limitedMessages)}`,
    );
    console.log(JSON.stringify(result));
  } finally {
    await store.close();
    await database.drop();
  }

  async function phase(spec: { name: string; messages: number; rulesFile: string; nodeCount: number }) {
    const sink = forkSelf(['--sink']);
    const { port } = await nextMessage<{ port: number }>(sink);
    const { deliveryId } = await seedDelivery(store.db, {
      now: Date.now(),
      recipients: benchRecipients(spec.messages, 'bench.test', spec.name),
      ...benchContent(),
    });
    const children = Array.from({ length: spec.nodeCount }, (_, i) => {
      const setup: NodeSetup = {
        nodeId: `${spec.name}-node-${i + 1}`,
        databaseUrl: database.url,
        port,
        rulesFile: spec.rulesFile,
        redisUrl,
        redisKeyPrefix: `herald:bench-scale:${process.pid}:${spec.name}:`,
        periodMs,
      };
      return forkSelf(['--node', JSON.stringify(setup)]);
    });
    await Promise.all(children.map((child) => nextMessage(child)));
    const started = Date.now();
    for (const child of children) child.send('start');
    const sentOf = async () =>
      Number(
        (
          await store.db
            .selectFrom('delivery_logs')
            .select((eb) => eb.fn.countAll().as('n'))
            .where('delivery_id', '=', deliveryId)
            .where('status', '=', 'sent')
            .executeTakeFirstOrThrow()
        ).n,
      );
    while ((await sentOf()) < spec.messages) await new Promise((resolve) => setTimeout(resolve, 200));
    const reports = await Promise.all(
      children.map((child) => {
        const report = nextMessage<NodeReport>(child);
        child.send('stop');
        return report;
      }),
    );
    sink.send('stop');
    const sinkReport = await nextMessage<{ accepted: number; maxConcurrentSessions: number }>(sink);
    const rows = await store.db
      .selectFrom('delivery_logs')
      .select('sent_at')
      .where('delivery_id', '=', deliveryId)
      .execute();
    const sentTimes = rows.map((row) => Number(row.sent_at)).sort((a, b) => a - b);
    return {
      seconds: Number(((sentTimes.at(-1)! - started) / 1000).toFixed(2)),
      reports,
      sentTimes,
      maxConcurrentSessions: sinkReport.maxConcurrentSessions,
    };
  }
}
