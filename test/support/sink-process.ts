import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { SinkStats } from '../../src/sim/sink-stats.ts';
import { startSmtpSink } from '../../src/sim/smtp-sink.ts';

// An SMTP sink in its own process: it counts sessions as a real remote server does, on its own
// event loop (a sink in the test's process sees our FIN in the same loop that sends it).

export interface SinkProcess {
  host: string;
  port: number;
  stats(): Promise<SinkStats>;
  close(): Promise<void>;
}

type Request = { id: number; kind: 'stats' };
type Reply = { kind: 'ready'; host: string; port: number } | { id: number; stats: SinkStats };

export async function startSinkProcess(hostname: string): Promise<SinkProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [hostname], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(child, 'message')) as [Extract<Reply, { kind: 'ready' }>];
  let nextId = 1;
  return {
    host: ready.host,
    port: ready.port,
    async stats() {
      const id = nextId++;
      child.send({ id, kind: 'stats' } satisfies Request);
      for (;;) {
        const [reply] = (await once(child, 'message')) as [Reply];
        if ('id' in reply && reply.id === id) return reply.stats;
      }
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  const sink = await startSmtpSink({ hostname: process.argv[2] ?? 'sink.test', trackRecipients: false });
  process.on('message', (request: Request) => process.send!({ id: request.id, stats: sink.stats() } satisfies Reply));
  process.on('SIGTERM', () => {
    void sink.close().then(() => process.exit(0));
  });
  process.send({ kind: 'ready', host: sink.host, port: sink.port } satisfies Reply);
}
