import type { ConnectionLimits, ConnectionPolicy } from './connection-policy.ts';
import type { MxResolver } from './mx-resolver.ts';
import type { PathThrottleSettings, ThrottleLease, ThrottlePath } from './path-throttle.ts';
import { openSmtpSession, type SmtpConnectOptions, type SmtpSession, type TransactionResult } from './smtp-client.ts';
import type { ClassifyReply, SmtpReply } from './smtp-reply.ts';

// Per-path SMTP connection pools. A path is (source address, MX host, destination address:port):
// connections are counted per path, at most `maxConnections` each, and each connection carries up
// to `maxMessagesPerConnection` messages before QUIT and a fresh connection. With shaping
// (`throttle`), every connection first takes a lease on its path (global across processes with
// Redis) and every message a permit from the rule's smoothed rate, asked for in batches.

export interface PoolKey {
  mxHost: string;
  /** Where to connect: a route's host, or the MX host's address (resolved when the pool opens). */
  host: string | null;
  port: number;
  /** Source address (affinity); unset or '' = the system's choice. */
  localAddress?: string;
  /** EHLO name announced from that address; unset = the pool's heloName. */
  heloName?: string;
  /** Public id of the source address: the key of MX rules and throttle counters (0 = none). */
  publicId?: number;
}

export function poolKeyString(key: PoolKey): string {
  return `${key.localAddress || '*'}|${key.publicId ?? 0}|${key.mxHost}|${key.host ?? '(dns)'}:${key.port}`;
}

export type BuildResult = { kind: 'message'; envelopeFrom: string; recipient: string; data: string } | { kind: 'skip' };

export interface PoolJob {
  logId: number;
  /** Recipient domain (error-density breaker). */
  domain: string;
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
  /** The path's rate will not reach these jobs within the hold horizon: back to the database until `retryInMs` from now. */
  onHold?(jobs: J[], retryInMs: number, key: PoolKey): void;
}

export interface ConnectionPoolOptions<J extends PoolJob> {
  policy: ConnectionPolicy;
  resolver: MxResolver;
  heloName: string;
  opportunisticTls: boolean;
  events: PoolEvents<J>;
  /** Idle connections are closed after this long without work. */
  idleCloseMs?: number;
  /** MX rules' connection leases and message rates; absent = only `policy` limits this pool. */
  throttle?: PathThrottleSettings;
  /** Qualifies a failed reply for the throttle's recordReply (the error-density breaker reads its
   *  category); the MTA passes the classifier its outcomes use, remembering each reply's verdict. */
  classify?: ClassifyReply;
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
  lease?: ThrottleLease;
  renewedAt: number;
}

interface Path<J> {
  key: PoolKey;
  jobs: J[];
  head: number;
  connections: Set<Connection>;
  opening: number;
  /** The MX address as the throttle counts it (`ip`, or `host:port` off port 25); set at the first open. */
  mxIp?: string;
  /** Message permits held (Infinity without throttle). */
  permits: number;
  asking: boolean;
  permitTimer?: NodeJS.Timeout;
  /** Set while every connection slot of the path is leased (maybe by another process). */
  leaseTimer?: NodeJS.Timeout;
  reportedWaiting: number;
  /** Closed sessions whose lease is released a moment later (see releaseAfterClose). */
  draining: number;
}

/**
 * The MX counts a session until it has handled our FIN, which can come after our socket reports
 * 'close' (on loopback, in the same event loop turn or the next). The lease, and the local slot,
 * are freed this much later so the concurrency the MX sees never exceeds maxConnections.
 */
const leaseCloseGraceMs = 20;

export function createConnectionPool<J extends PoolJob>(options: ConnectionPoolOptions<J>): ConnectionPool<J> {
  const idleCloseMs = options.idleCloseMs ?? 2_000;
  const shaping = options.throttle;
  const throttle = shaping?.throttle;
  const holdHorizonMs = shaping?.holdHorizonMs ?? 10_000;
  const permitBatch = shaping?.permitBatch ?? 100;
  const paths = new Map<string, Path<J>>();
  const pendingReleases = new Set<() => void>();
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

  function limitsOf(path: Path<J>): ConnectionLimits {
    return options.policy.limitsFor(path.key.mxHost, path.key.publicId ?? 0);
  }

  function refOf(path: Path<J>): ThrottlePath {
    return { mxHost: path.key.mxHost, mxIp: path.mxIp ?? path.key.host ?? path.key.mxHost, publicId: path.key.publicId ?? 0 };
  }

  function pump(path: Path<J>): void {
    if (stopping) return;
    const limits = limitsOf(path);
    for (const connection of path.connections) {
      if (queued(path) === 0 || path.permits < 1) break;
      if (!connection.busy && !connection.session.closing) {
        path.permits--;
        void runOn(path, connection);
      }
    }
    if (throttle) askPermits(path);
    // Open more only for permitted work no connection will pick up (the first connection opens
    // without a permit: it resolves the path's address, which permits are counted on).
    const demand = Math.min(queued(path), path.permits >= 1 ? path.permits : path.connections.size + path.opening === 0 ? 1 : 0);
    while (!path.leaseTimer && demand > path.opening + usable(path) && path.connections.size + path.opening + path.draining < limits.maxConnections) void open(path);
    for (const connection of path.connections) if (!connection.busy && !connection.session.closing && queued(path) === 0) armIdle(path, connection);
    if (throttle && path.reportedWaiting > 0 && queued(path) === 0) report(path, 0);
  }

  function report(path: Path<J>, waiting: number): void {
    path.reportedWaiting = waiting;
    throttle!.reportWaiting(refOf(path), waiting);
  }

  /** One batch request at a time per path; a partial grant waits `retryInMs` before asking again. */
  function askPermits(path: Path<J>): void {
    const want = queued(path) - path.permits;
    // Only a path with a live (or reconnecting) connection books permits: permits booked while
    // waiting for a lease held by another MTA process would be taken from the shared rate, unused.
    const connecting = usable(path) > 0 || path.opening > 0 || path.draining > 0;
    if (want <= 0 || path.asking || path.permitTimer || !connecting || path.mxIp === undefined || stopping) return;
    const count = Math.min(want, permitBatch);
    path.asking = true;
    report(path, queued(path));
    throttle!.acquireMessages(refOf(path), count).then(
      (decision) => {
        path.asking = false;
        path.permits += decision.granted;
        if (decision.granted < count) {
          holdSurplus(path, decision.retryInMs);
          retryPermits(path, decision.retryInMs);
        }
        pump(path);
      },
      () => {
        // Throttle backend unreachable (Redis down): send nothing on this path, ask again soon.
        path.asking = false;
        retryPermits(path, 1_000);
      },
    );
  }

  function retryPermits(path: Path<J>, ms: number): void {
    if (stopping || path.permitTimer) return;
    path.permitTimer = setTimeout(() => {
      path.permitTimer = undefined;
      pump(path);
    }, Math.max(1, ms));
    path.permitTimer.unref();
  }

  /** A rate-bound path keeps what its rate sends within the horizon; the rest waits in the database. */
  function holdSurplus(path: Path<J>, retryInMs: number): void {
    if (!options.events.onHold) return;
    const keep = path.permits + Math.ceil((1.5 * holdHorizonMs) / Math.max(retryInMs, 1)) + 10;
    const surplus = queued(path) - keep;
    if (surplus <= 0) return;
    const held = path.jobs.splice(path.jobs.length - surplus, surplus);
    options.events.onHold(held, holdHorizonMs, path.key);
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
    const limits = limitsOf(path);
    let host = path.key.host;
    let failure: SmtpReply | undefined;
    if (host === null) {
      const address = await options.resolver.resolveAddress(path.key.mxHost);
      if (address.kind === 'failure') failure = address.reply;
      else host = address.address;
    }
    if (host !== null && path.mxIp === undefined) path.mxIp = path.key.port === 25 ? host : `${host}:${path.key.port}`;
    let lease: ThrottleLease | undefined;
    if (!failure && throttle && host !== null) {
      const decision = await throttle.acquireConnection(refOf(path)).catch((): { kind: 'wait'; retryInMs: number } => ({ kind: 'wait', retryInMs: 1_000 }));
      if (decision.kind === 'wait' || stopping) {
        if (decision.kind === 'granted') void throttle.releaseConnection(decision.lease);
        path.opening--;
        // Every slot of the path is leased (here or by another MTA process): ask again later.
        if (!stopping && !path.leaseTimer && decision.kind === 'wait') {
          path.leaseTimer = setTimeout(() => {
            path.leaseTimer = undefined;
            pump(path);
          }, decision.retryInMs);
          path.leaseTimer.unref();
          if (queued(path) !== path.reportedWaiting) report(path, queued(path));
        }
        checkStopped();
        return;
      }
      lease = decision.lease;
    }
    let session: SmtpSession | undefined;
    if (!failure && host !== null) {
      const connectOptions: SmtpConnectOptions = {
        host,
        port: path.key.port,
        servername: path.key.mxHost,
        heloName: path.key.heloName || options.heloName,
        opportunisticTls: limits.tls === undefined ? options.opportunisticTls : limits.tls !== 'disabled',
        requireTls: limits.tls === 'required',
        timeouts: limits.timeouts,
        localAddress: path.key.localAddress || undefined,
      };
      const result = await openSmtpSession(connectOptions);
      if (result.kind === 'open') session = result.session;
      else failure = result.reply;
    }
    path.opening--;
    if (throttle && host !== null) {
      if (session) throttle.recordConnection(refOf(path), 'accepted');
      else if (failure) throttle.recordConnection(refOf(path), failure.code === null ? 'unreachable' : 'refused', failure);
    }
    if (!session && lease) void throttle!.releaseConnection(lease);
    if (!session) {
      // With other connections alive the path works (the server may just limit connections):
      // their queue stays. With none, nothing queued here can go out now.
      if (path.connections.size === 0 && path.opening === 0 && queued(path) > 0) {
        const jobs = drainPath(path);
        if (throttle) for (const job of jobs) throttle.recordReply(refOf(path), job.domain, failure!, options.classify?.(failure!));
        options.events.onUnreachable(jobs, failure!, path.key);
      }
      checkStopped();
      return;
    }
    if (stopping) {
      session.quit();
      openCount++;
      session.onClose(() => {
        if (lease) void throttle!.releaseConnection(lease);
        openCount--;
        checkStopped();
      });
      return;
    }
    const connection: Connection = { session, messages: 0, busy: false, lease, renewedAt: Date.now() };
    path.connections.add(connection);
    openCount++;
    session.onClose(() => {
      if (lease) releaseAfterClose(path, lease);
      if (connection.idleTimer) clearTimeout(connection.idleTimer);
      path.connections.delete(connection);
      openCount--;
      checkStopped();
      pump(path);
    });
    pump(path);
  }

  function releaseAfterClose(path: Path<J>, lease: ThrottleLease): void {
    path.draining++;
    const release = () => {
      if (!pendingReleases.delete(release)) return;
      clearTimeout(timer);
      path.draining--;
      void throttle!.releaseConnection(lease);
      pump(path);
    };
    pendingReleases.add(release);
    const timer = setTimeout(release, stopping ? 0 : leaseCloseGraceMs);
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
    const limits = limitsOf(path);
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
        if (throttle) {
          throttle.recordReply(refOf(path), job.domain, result.reply, result.kind === 'accepted' ? undefined : options.classify?.(result.reply));
          if (connection.lease && Date.now() - connection.renewedAt >= shaping!.renewAfterMs) {
            connection.renewedAt = Date.now();
            void throttle.renewConnection(connection.lease).catch(() => false);
          }
        }
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
        path = { key, jobs: [], head: 0, connections: new Set(), opening: 0, permits: throttle ? 0 : Infinity, asking: false, reportedWaiting: 0, draining: 0 };
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
        if (path.permitTimer) clearTimeout(path.permitTimer);
        if (path.leaseTimer) clearTimeout(path.leaseTimer);
        path.permitTimer = path.leaseTimer = undefined;
        notStarted.push(...drainPath(path));
        for (const connection of path.connections) if (!connection.busy) connection.session.quit();
      }
      await new Promise<void>((resolve) => {
        stopWaiters.push(resolve);
        checkStopped();
      });
      for (const release of [...pendingReleases]) release();
      return notStarted;
    },
  };
}
