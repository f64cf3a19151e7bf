// A fast scripted SMTP host on node:net (smtp-server waits ~100 ms before its greeting, which would
// make the simulator the bottleneck of a benchmark). Behaviour is data: see sink-behaviour.ts.
import { createServer, type Server, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import { systemClock, type Clock } from '../common/clock.ts';
import type { SinkBehaviour, SinkStateView } from './sink-behaviour.ts';
import { copySinkStats, emptySinkStats, type SinkStats } from './sink-stats.ts';
import { SinkSession, type KeptMessage, type SinkContext } from './smtp-session.ts';
import { simulatorSecureContext } from './tls-context.ts';

export type { KeptMessage } from './smtp-session.ts';

export interface SmtpSinkOptions {
  behaviour?: SinkBehaviour;
  /** Name in the greeting and EHLO reply. Default 'sink.test'. */
  hostname?: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  clock?: Clock;
  /** Offer STARTTLS with the given context; `true` uses the simulator's self-signed certificate. */
  tls?: SecureContext | boolean;
  /** Keep every accepted message in `sink.keptMessages` (tests that inspect headers). Default false. */
  keepMessages?: boolean;
  /** Count acceptances per recipient address (see `acceptedCount`). Default true; off for benchmarks. */
  trackRecipients?: boolean;
  /** Advertised with SIZE; bigger messages get 552 5.3.4. Default 50 MiB. */
  maxMessageBytes?: number;
  /** Per transaction; further RCPTs get 452 4.5.3. Default 1000. */
  maxRecipients?: number;
  /** Idle sockets (stalled ones included) are closed after this long. Default 5 minutes. */
  idleTimeoutMs?: number;
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  readonly hostname: string;
  stats(): SinkStats;
  /** Messages accepted after DATA that named this recipient (case-insensitive); 0 when tracking is off. */
  acceptedCount(address: string): number;
  /** Per address acceptance counts, or null when `trackRecipients` is false. */
  readonly acceptedRecipients: ReadonlyMap<string, number> | null;
  /** Accepted messages when `keepMessages` is true, else an empty array. */
  readonly keptMessages: readonly KeptMessage[];
  /** Resolves once no session is open (immediately if none is). */
  whenIdle(): Promise<void>;
  /** Stops listening, destroys every open socket and resolves when the server is closed. */
  close(): Promise<void>;
}

export async function startSmtpSink(options: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const stats = emptySinkStats();
  const acceptedRecipients = options.trackRecipients === false ? null : new Map<string, number>();
  const keptMessages: KeptMessage[] = [];
  const state: SinkStateView = {
    get messagesAccepted() {
      return stats.messagesAccepted;
    },
    acceptedCount: (address) => acceptedRecipients?.get(address.toLowerCase()) ?? 0,
  };
  const context: SinkContext = {
    hostname: options.hostname ?? 'sink.test',
    behaviour: options.behaviour ?? {},
    clock: options.clock ?? systemClock,
    stats,
    state,
    secureContext: resolveTls(options.tls),
    maxMessageBytes: options.maxMessageBytes ?? 50 * 1024 * 1024,
    maxRecipients: options.maxRecipients ?? 1000,
    maxLineBytes: 4096,
    idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
    rateWindow: { startedAt: 0, count: 0 },
    greylist: new Map(),
    acceptedRecipients,
    keptMessages: options.keepMessages ? keptMessages : null,
  };
  const sockets = new Set<Socket>();
  const idleWaiters: Array<() => void> = [];

  const server: Server = createServer((socket) => {
    stats.connections += 1;
    stats.openSessions += 1;
    stats.maxConcurrentSessions = Math.max(stats.maxConcurrentSessions, stats.openSessions);
    socket.setNoDelay(true);
    const session = new SinkSession(socket, context, (added) => {
      sockets.add(added);
      added.once('close', () => sockets.delete(added));
    });
    socket.once('close', () => {
      stats.openSessions -= 1;
      session.finish();
      if (stats.openSessions === 0) {
        for (const resolve of idleWaiters.splice(0)) resolve();
      }
    });
    session.start();
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    host,
    port,
    hostname: context.hostname,
    stats: () => copySinkStats(stats),
    acceptedCount: state.acceptedCount,
    acceptedRecipients,
    keptMessages,
    whenIdle: () =>
      stats.openSessions === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

function resolveTls(tls: SmtpSinkOptions['tls']): SecureContext | undefined {
  if (tls === true) return simulatorSecureContext();
  if (!tls) return undefined;
  return tls;
}
