// How many messages per second one simulator sink absorbs, to show it is not the bottleneck of the
// MTA benchmark (target: the MTA sending >= 5,000 msgs/s over ~10 connections).
// The sink runs in a child process so the clients do not steal its event loop.
// Run: node --import tsx bench/sink-throughput.ts [messages] [connections]
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RawSmtpClient } from '../src/sim/raw-smtp-client.ts';
import { startSmtpSink } from '../src/sim/smtp-sink.ts';

interface SinkReport {
  accepted: number;
  peakRssMiB: number;
}

if (process.argv[2] === '--sink') {
  const sink = await startSmtpSink({ trackRecipients: process.argv[3] === 'true' });
  process.send!({ port: sink.port });
  process.once('message', async () => {
    const report: SinkReport = {
      accepted: sink.stats().messagesAccepted,
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
    await sink.close();
    process.send!(report, () => process.disconnect());
  });
} else {
  const total = Number(process.argv[2] ?? 50_000);
  const connections = Number(process.argv[3] ?? 10);
  const body = `From: bench@herald.test\r\nSubject: throughput\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(8);
  for (const trackRecipients of [false, true]) {
    const result = await run(total, connections, body, trackRecipients);
    console.log(
      `sink throughput (trackRecipients=${trackRecipients}): ${total} messages of ${body.length} bytes over ` +
        `${connections} pipelined connections in ${result.seconds.toFixed(2)} s = ${Math.round(total / result.seconds)} msgs/s ` +
        `(sink counted ${result.accepted}, sink peak RSS ${result.peakRssMiB} MiB)`,
    );
  }
  console.log(`peak RSS of the client process: ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
}

async function run(total: number, connections: number, body: string, trackRecipients: boolean) {
  const child = fork(fileURLToPath(import.meta.url), ['--sink', String(trackRecipients)], {
    execArgv: ['--import', 'tsx'],
  });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (message) => resolve((message as { port: number }).port)),
  );
  const started = performance.now();
  const perConnection = Math.ceil(total / connections);
  await Promise.all(
    Array.from({ length: connections }, (_, connection) =>
      sendMany(port, connection, Math.min(perConnection, total - connection * perConnection), body),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  child.send('stop');
  const report = await new Promise<SinkReport>((resolve) =>
    child.once('message', (message) => resolve(message as SinkReport)),
  );
  await new Promise((resolve) => child.once('exit', resolve));
  return { seconds, ...report };
}

/** One round trip per message: the end of DATA travels with the next transaction's commands (RFC 2920). */
async function sendMany(port: number, connection: number, count: number, body: string): Promise<void> {
  if (count <= 0) return;
  const client = await RawSmtpClient.connect(port);
  await client.read(1);
  await client.command('EHLO bench.test');
  const envelope = (index: number) =>
    `MAIL FROM:<bench@herald.test>\r\nRCPT TO:<r${connection}-${index}@accept.test>\r\nDATA\r\n`;
  client.send(envelope(0));
  await client.read(3);
  for (let index = 1; index < count; index += 1) {
    client.send(`${body}.\r\n${envelope(index)}`);
    const replies = await client.read(4);
    if (replies[3]!.code !== 354) throw new Error(`unexpected reply ${replies[3]!.code} ${replies[3]!.text}`);
  }
  client.send(`${body}.\r\nQUIT\r\n`);
  await client.read(2);
  await client.closed();
}
