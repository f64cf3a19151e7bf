import type { ConnectionPolicy } from './connection-policy.ts';
import type { MxResolver } from './mx-resolver.ts';
import { openSmtpSession, type SmtpConnectOptions, type SmtpSession, type TransactionResult } from './smtp-client.ts';
import type { SmtpReply } from './smtp-reply.ts';

// Per-path SMTP connection pools. A path is (source address, MX host, destination address:port):
// connections are counted per path, at most `maxConnections` each, and each connection carries up
// to `maxMessagesPerConnection` messages before QUIT and a fresh connection.

export interface PoolKey {
  mxHost: string;
  /** Where to connect: a route's host, or the MX host's address (resolved when the pool opens). */
  host: string | null;
  port: number;
  /** Source address; unset = the system's choice (affinities will set it). */
  localAddress?: string;
}

export function poolKeyString(key: PoolKey): string {
  return `${key.localAddress ?? '*'}|${key.mxHost}|${key.host ?? '(dns)'}:${key.port}`;
}

export type BuildResult = { kind: 'message'; envelopeFrom: string; recipient: string; data: string } | { kind: 'skip' };

export interface PoolJob {
  logId: number;
  /** Renders and signs the message right before it is sent (or decides not to send it). */
  build(): Promise<BuildResult>;
}

export interface PoolEvents<J extends PoolJob> {
  /** The transaction ended: accepted, refused, or lost with the connection. */
  onTransaction(job: J, result: TransactionResult, key: PoolKey): void;
  /** No connection could be opened to the path while nothing else was open: these jobs were not tried. */
  onUnreachable(jobs: J[], reply: SmtpReply, key: PoolKey): void;
  /** build() threw: a bug, reported per job so the message is not lost. */
  onBuildError(job: J, error: unknown): void;
}

export interface ConnectionPoolOptions<J extends PoolJob> {
  policy: ConnectionPolicy;
  resolver: MxResolver;
  heloName: string;
  opportunisticTls: boolean;
  events: PoolEvents<J>;
  /** Idle connections are closed after this long without work. */
  idleCloseMs?: number;
}

export interface PoolStats {
  queued: number;
  inFlight: number;
  connectionsOpen: number;
}

export interface ConnectionPool<J extends PoolJob> {
  enqueue(key: PoolKey, job: J): void;
  stats(): PoolStats;
  /** Stops starting transactions; returns the queued jobs not started; resolves when none is in flight and every connection is closed. */
  stop(): Promise<J[]>;
}

interface Connection {
  session: SmtpSession;
  messages: number;
  busy: boolean;
  idleTimer?: NodeJS.Timeout;
}

interface Path<J> {
  key: PoolKey;
  jobs: J[];
  head: number;
  connections: Set<Connection>;
  opening: number;
}

export function createConnectionPool<J extends PoolJob>(options: ConnectionPoolOptions<J>): ConnectionPool<J> {
  const idleCloseMs = options.idleCloseMs ?? 2_000;
  const paths = new Map<string, Path<J>>();
  let stopping = false;
  let inFlight = 0;
  let openCount = 0;
  let stopWaiters: Array<() => void> = [];

  function queued(path: Path<J>): number {
    return path.jobs.length - path.head;
  }

  function take(path: Path<J>): J | undefined {
    if (path.head >= path.jobs.length) return undefined;
    const job = path.jobs[path.head++];
    // Compact now and then instead of shifting on every message.
    if (path.head > 1_024 && path.head * 2 > path.jobs.length) {
      path.jobs = path.jobs.slice(path.head);
      path.head = 0;
    }
    return job;
  }

  function drainPath(path: Path<J>): J[] {
    const rest = path.jobs.slice(path.head);
    path.jobs = [];
    path.head = 0;
    return rest;
  }

  function checkStopped(): void {
    if (!stopping || inFlight > 0 || openCount > 0) return;
    for (const path of paths.values()) if (path.opening > 0) return;
    for (const waiter of stopWaiters.splice(0)) waiter();
  }

  function pump(path: Path<J>): void {
    if (stopping) return;
    const limits = options.policy.limitsFor(path.key.mxHost);
    for (const connection of path.connections) {
      if (queued(path) === 0) break;
      if (!connection.busy && !connection.session.closing) void runOn(path, connection);
    }
    // Open more only for work no connection will pick up.
    while (queued(path) > path.opening + usable(path) && path.connections.size + path.opening < limits.maxConnections) void open(path);
    for (const connection of path.connections) if (!connection.busy && !connection.session.closing && queued(path) === 0) armIdle(path, connection);
  }

  /** Connections that can take another message (not retiring after QUIT). */
  function usable(path: Path<J>): number {
    let count = 0;
    for (const connection of path.connections) if (!connection.session.closing) count++;
    return count;
  }

  function armIdle(path: Path<J>, connection: Connection): void {
    if (connection.idleTimer) return;
    connection.idleTimer = setTimeout(() => {
      connection.idleTimer = undefined;
      if (!connection.busy) connection.session.quit();
    }, idleCloseMs);
    connection.idleTimer.unref();
    void path;
  }

  async function open(path: Path<J>): Promise<void> {
    path.opening++;
    const limits = options.policy.limitsFor(path.key.mxHost);
    let host = path.key.host;
    let failure: SmtpReply | undefined;
    if (host === null) {
      const address = await options.resolver.resolveAddress(path.key.mxHost);
      if (address.kind === 'failure') failure = address.reply;
      else host = address.address;
    }
    let session: SmtpSession | undefined;
    if (!failure && host !== null) {
      const connectOptions: SmtpConnectOptions = {
        host,
        port: path.key.port,
        servername: path.key.mxHost,
        heloName: options.heloName,
        opportunisticTls: options.opportunisticTls,
        timeouts: limits.timeouts,
        localAddress: path.key.localAddress,
      };
      const result = await openSmtpSession(connectOptions);
      if (result.kind === 'open') session = result.session;
      else failure = result.reply;
    }
    path.opening--;
    if (!session) {
      // With other connections alive the path works (the server may just limit connections):
      // their queue stays. With none, nothing queued here can go out now.
      if (path.connections.size === 0 && path.opening === 0 && queued(path) > 0) {
        options.events.onUnreachable(drainPath(path), failure!, path.key);
      }
      checkStopped();
      return;
    }
    if (stopping) {
      session.quit();
      openCount++;
      session.onClose(() => {
        openCount--;
        checkStopped();
      });
      return;
    }
    const connection: Connection = { session, messages: 0, busy: false };
    path.connections.add(connection);
    openCount++;
    session.onClose(() => {
      if (connection.idleTimer) clearTimeout(connection.idleTimer);
      path.connections.delete(connection);
      openCount--;
      checkStopped();
      pump(path);
    });
    pump(path);
  }

  async function runOn(path: Path<J>, connection: Connection): Promise<void> {
    const job = take(path);
    if (!job) return;
    connection.busy = true;
    if (connection.idleTimer) {
      clearTimeout(connection.idleTimer);
      connection.idleTimer = undefined;
    }
    inFlight++;
    const limits = options.policy.limitsFor(path.key.mxHost);
    try {
      let built: BuildResult;
      try {
        built = await job.build();
      } catch (error) {
        options.events.onBuildError(job, error);
        built = { kind: 'skip' };
      }
      if (built.kind === 'message') {
        const result = await connection.session.send(built.envelopeFrom, built.recipient, built.data);
        connection.messages++;
        options.events.onTransaction(job, result, path.key);
        if (connection.messages >= limits.maxMessagesPerConnection) connection.session.quit();
      }
    } finally {
      inFlight--;
      connection.busy = false;
    }
    if (stopping) {
      connection.session.quit();
      checkStopped();
      return;
    }
    pump(path);
  }

  return {
    enqueue(key, job) {
      const id = poolKeyString(key);
      let path = paths.get(id);
      if (!path) {
        path = { key, jobs: [], head: 0, connections: new Set(), opening: 0 };
        paths.set(id, path);
      }
      path.jobs.push(job);
      pump(path);
    },
    stats() {
      let queuedJobs = 0;
      for (const path of paths.values()) queuedJobs += queued(path);
      return { queued: queuedJobs, inFlight, connectionsOpen: openCount };
    },
    async stop() {
      stopping = true;
      const notStarted: J[] = [];
      for (const path of paths.values()) {
        notStarted.push(...drainPath(path));
        for (const connection of path.connections) if (!connection.busy) connection.session.quit();
      }
      await new Promise<void>((resolve) => {
        stopWaiters.push(resolve);
        checkStopped();
      });
      return notStarted;
    },
  };
}
