import type { ConnectionLimits, ConnectionPolicy } from './connection-policy.ts';
import { addressesToTry, triesNextAddress } from './mx-addresses.ts';
import type { MxResolver } from './mx-resolver.ts';
import { FairJobQueue, type Share } from './fair-share.ts';
import type { PathThrottle, PathThrottleSettings, ThrottleLease, ThrottlePath } from './path-throttle.ts';
import { connectionsToOpen, permitsToAsk, slowPathSurplus, surplusToHold, type PathCounts } from './pool-decisions.ts';
import type { MtaTimings } from './timings.ts';
import { openSmtpSession, type OpenResult, type SmtpSession, type TransactionResult } from './smtp-client.ts';
import type { SmtpReply } from '../bounce/smtp-reply.ts';
import type { ClassifyReply } from '../bounce/types.ts';

// Per-path SMTP connection pools. A path is (source address, MX host, destination address:port):
// connections are counted per path, at most `maxConnections` each, and each connection carries up
// to `maxMessagesPerConnection` messages before QUIT and a fresh connection. On a connection with
// PIPELINING, the next message starts as soon as the previous one's content is written (two in
// flight, see smtp-client.ts). With shaping
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

export type BuildResult =
  /** `data`: the message, or its SMTP DATA bytes (SmtpSession.send). */
  { kind: 'message'; envelopeFrom: string; recipient: string; data: string | Uint8Array } | { kind: 'skip' };

export interface PoolJob {
  logId: number;
  /** Recipient domain (error-density breaker). */
  domain: string;
  /** The delivery's priority and weight: how the path's budget is split (fair-share.ts). */
  share?: Share;
  /** Renders and signs the message right before it is sent (or decides not to send it). */
  build(): Promise<BuildResult>;
  /**
   * Starts rendering and signing the message ahead of its turn, with no other effect (build() still
   * decides whether it is sent): called for the jobs next in line, so that a connection taking one
   * finds it signed and its MAIL, RCPT and DATA leave in the same write as the previous message's
   * content (a DKIM worker's round trip would otherwise split them and idle the connection).
   */
  prepare?(): void;
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
  /** Addresses of an MX host tried before its messages go to the next MX host (default 2, RFC 5321 §5.1's "at least two"). */
  maxAddressesPerHost?: number;
  /** Idle connections are closed after this long without work. */
  idleCloseMs?: number;
  /** How long a closed connection keeps its slot (default 100 ms), see defaultCloseGraceMs. */
  closeGraceMs?: number;
  /** MX rules' connection leases and message rates; absent = only `policy` limits this pool. */
  throttle?: PathThrottleSettings;
  /** Qualifies a failed reply for the throttle's recordReply (the error-density breaker reads its
   *  category); the MTA passes the classifier its outcomes use, remembering each reply's verdict. */
  classify?: ClassifyReply;
  /** Session and transaction durations (metrics); absent = not measured. */
  timings?: MtaTimings;
  /**
   * The hold horizon (default 10 s): a rate-bound path keeps what its permits let through within
   * it; every path's pace is measured once per horizon, and it keeps what it sends in
   * slowPathKeepHorizons of them at that pace. The rest waits in the database.
   */
  holdHorizonMs?: number;
}

export interface PoolStats {
  queued: number;
  inFlight: number;
  connectionsOpen: number;
  /** Paths held in memory: those with messages, connections or timers (an idle one is forgotten). */
  paths: number;
}

export interface ConnectionPool<J extends PoolJob> {
  enqueue(key: PoolKey, job: J): void;
  stats(): PoolStats;
  /** Stops starting transactions; returns the queued jobs not started; resolves when none is in flight and every connection is closed. */
  stop(): Promise<J[]>;
}

interface Connection {
  session: SmtpSession;
  /** Transactions started on it (in flight or finished). */
  started: number;
  /** Transactions in flight: 0, 1, or 2 when the first awaits only its final reply. */
  inFlight: number;
  /** The transaction in flight has written its content (set by it, cleared when the next one starts). */
  contentWritten: boolean;
  idleTimer?: NodeJS.Timeout;
  lease?: ThrottleLease;
  /** Renews the lease while the connection is open (a transaction may outlast the lease). */
  renewTimer?: NodeJS.Timeout;
}

interface Path<J extends PoolJob> {
  key: PoolKey;
  jobs: FairJobQueue<J>;
  connections: Set<Connection>;
  opening: number;
  /** The MX address as the throttle counts it (`ip`, or `host:port` off port 25): the one in use, set at the first open. */
  mxIp?: string;
  /**
   * The MX host's addresses this path tries in turn (resolved at the first open; none with a
   * route), and the one its connections go to. The path moves to the next only when no connection
   * to the current one is open or opening, so its connections go to one address at a time and
   * maxConnections stays a cap per MX host, not per address.
   */
  addresses?: string[];
  addressIndex: number;
  /** Message permits held (Infinity without throttle). */
  permits: number;
  asking: boolean;
  permitTimer?: NodeJS.Timeout;
  /** Set while every connection slot of the path is leased (maybe by another process). */
  leaseTimer?: NodeJS.Timeout;
  reportedWaiting: number;
  /** Closed sessions still counted for a moment (and their lease held), see defaultCloseGraceMs. */
  draining: number;
  /** Jobs at the head of the queue prepared ahead, as last counted (see #prepareAhead). */
  preparedAhead: number;
  /** Jobs taken by a connection since `paceSince` (performance.now()), the pace #holdSlowPaths measures. */
  taken: number;
  paceSince: number;
}

/**
 * The MX counts a session until it has read our FIN, which comes after our socket reports 'close'
 * (the server's event loop handles it when it gets to it: later on a loaded machine). Every closed
 * connection, leased or not, keeps its slot (and its lease) this much longer, so the concurrency the
 * MX sees stays within maxConnections. 20 ms let a sink in another process on a loaded 2-core
 * machine see maxConnections + 1 (test/mta-connection-cap.test.ts); 100 ms costs a path at its cap
 * 100 ms per replaced connection, once per maxMessagesPerConnection messages: under 1% at Internet
 * round trips, but a quarter of bench/send.ts's loopback rate (mta.connectionCloseGraceMs).
 */
const defaultCloseGraceMs = 100;

/**
 * Jobs of a path prepared ahead of their turn (PoolJob.prepare): per connection, and at most. Since
 * the DKIM workers also build the messages they sign, four per connection left 22–28 % of the
 * builds of bench/send.ts waiting for their worker (Ed25519, 2 workers, 20 or 40 connections); ten,
 * 7 % at 20 connections and 15 % at 40, where the 256 cap is reached.
 */
const preparedPerConnection = 10;
const maxPreparedAhead = 256;

/**
 * A path keeps queued what it sends in this many hold horizons at the pace of the last one (a
 * minute by default); the rest goes back to the database for as long. Long enough that a path
 * sending steadily never hands anything back to be claimed again, short enough that a tarpitting MX
 * (one reply a second) keeps about a hundred messages in memory and a silent one ten.
 */
const slowPathKeepHorizons = 6;

export function createConnectionPool<J extends PoolJob>(options: ConnectionPoolOptions<J>): ConnectionPool<J> {
  return new PathPools(options);
}

/** Where a new connection goes: its address (resolved), and its lease when shaping counts it. */
type Opening =
  | { kind: 'ready'; host: string; lease?: ThrottleLease }
  | { kind: 'failed'; reply: SmtpReply }
  | { kind: 'wait' };

class PathPools<J extends PoolJob> implements ConnectionPool<J> {
  readonly #options: ConnectionPoolOptions<J>;
  readonly #idleCloseMs: number;
  readonly #closeGraceMs: number;
  readonly #throttle: PathThrottle | undefined;
  readonly #holdHorizonMs: number;
  readonly #permitBatch: number;
  readonly #maxAddresses: number;
  readonly #paths = new Map<string, Path<J>>();
  readonly #pendingReleases = new Set<() => void>();
  readonly #stopWaiters: Array<() => void> = [];
  #stopping = false;
  #inFlight = 0;
  #openCount = 0;
  #paceTimer: NodeJS.Timeout | undefined;

  constructor(options: ConnectionPoolOptions<J>) {
    this.#options = options;
    this.#idleCloseMs = options.idleCloseMs ?? 2_000;
    this.#closeGraceMs = options.closeGraceMs ?? defaultCloseGraceMs;
    this.#throttle = options.throttle?.throttle;
    this.#holdHorizonMs = options.holdHorizonMs ?? 10_000;
    this.#permitBatch = options.throttle?.permitBatch ?? 100;
    this.#maxAddresses = options.maxAddressesPerHost ?? 2;
  }

  enqueue(key: PoolKey, job: J): void {
    const id = poolKeyString(key);
    let path = this.#paths.get(id);
    if (!path) {
      path = {
        key,
        jobs: new FairJobQueue<J>(),
        connections: new Set(),
        opening: 0,
        permits: this.#throttle ? 0 : Infinity,
        asking: false,
        reportedWaiting: 0,
        draining: 0,
        preparedAhead: 0,
        addressIndex: 0,
        taken: 0,
        paceSince: performance.now(),
      };
      this.#paths.set(id, path);
    }
    path.jobs.push(job);
    this.#pump(path);
    this.#armPaceTimer();
  }

  stats(): PoolStats {
    let queuedJobs = 0;
    for (const path of this.#paths.values()) queuedJobs += path.jobs.size;
    return { queued: queuedJobs, inFlight: this.#inFlight, connectionsOpen: this.#openCount, paths: this.#paths.size };
  }

  async stop(): Promise<J[]> {
    this.#stopping = true;
    clearTimeout(this.#paceTimer);
    const notStarted: J[] = [];
    for (const path of this.#paths.values()) {
      if (path.permitTimer) clearTimeout(path.permitTimer);
      if (path.leaseTimer) clearTimeout(path.leaseTimer);
      path.permitTimer = path.leaseTimer = undefined;
      notStarted.push(...path.jobs.drain());
      for (const connection of path.connections) if (connection.inFlight === 0) connection.session.quit();
    }
    await new Promise<void>((resolve) => {
      this.#stopWaiters.push(resolve);
      this.#checkStopped();
    });
    for (const release of [...this.#pendingReleases]) release();
    return notStarted;
  }

  #checkStopped(): void {
    if (!this.#stopping || this.#inFlight > 0 || this.#openCount > 0) return;
    for (const path of this.#paths.values()) if (path.opening > 0) return;
    for (const waiter of this.#stopWaiters.splice(0)) waiter();
  }

  #limitsOf(path: Path<J>): ConnectionLimits {
    return this.#options.policy.limitsFor(path.key.mxHost, path.key.publicId ?? 0);
  }

  #refOf(path: Path<J>): ThrottlePath {
    return {
      mxHost: path.key.mxHost,
      mxIp: path.mxIp ?? path.key.host ?? path.key.mxHost,
      publicId: path.key.publicId ?? 0,
    };
  }

  #counts(path: Path<J>): PathCounts {
    let usable = 0;
    for (const connection of path.connections) if (!connection.session.closing) usable++;
    return {
      queued: path.jobs.size,
      permits: path.permits,
      usable,
      open: path.connections.size,
      opening: path.opening,
      draining: path.draining,
    };
  }

  /** Whether the connection can start a transaction now (its session takes one, its message budget is not spent). */
  #takesAnother(path: Path<J>, connection: Connection): boolean {
    if (connection.started >= this.#limitsOf(path).maxMessagesPerConnection) return false;
    if (connection.inFlight === 0) return !connection.session.closing;
    return connection.inFlight === 1 && connection.contentWritten && connection.session.acceptsNext;
  }

  #pump(path: Path<J>): void {
    if (this.#stopping) return;
    for (const connection of path.connections) {
      if (path.jobs.size === 0 || path.permits < 1) break;
      if (this.#takesAnother(path, connection)) {
        path.permits--;
        void this.#runOn(path, connection);
      }
    }
    if (this.#throttle) this.#askPermits(path);
    const toOpen = connectionsToOpen(
      this.#counts(path),
      this.#limitsOf(path).maxConnections,
      path.leaseTimer !== undefined,
    );
    for (let i = 0; i < toOpen; i++) void this.#open(path);
    for (const connection of path.connections)
      if (connection.inFlight === 0 && !connection.session.closing && path.jobs.size === 0) this.#armIdle(connection);
    if (this.#throttle && path.reportedWaiting > 0 && path.jobs.size === 0) this.#report(path, 0);
    this.#forgetIfIdle(path);
  }

  /**
   * A path with nothing queued, open, opening, closing or timed is dropped (the next message makes
   * a new one): every recipient domain (MX host) gets one, and kept forever they grew the MTA by
   * about 1 KiB per domain ever sent to (22 MiB after 20,000 domains of one wildcard zone).
   */
  #forgetIfIdle(path: Path<J>): void {
    if (path.jobs.size > 0 || path.connections.size > 0 || path.opening > 0 || path.draining > 0) return;
    if (path.asking || path.permitTimer || path.leaseTimer || path.reportedWaiting > 0) return;
    const id = poolKeyString(path.key);
    if (this.#paths.get(id) === path) this.#paths.delete(id);
  }

  #report(path: Path<J>, waiting: number): void {
    path.reportedWaiting = waiting;
    this.#throttle!.reportWaiting(this.#refOf(path), waiting);
  }

  /** One batch request at a time per path; a partial grant waits `retryInMs` before asking again. */
  #askPermits(path: Path<J>): void {
    if (path.asking || path.permitTimer || path.mxIp === undefined || this.#stopping) return;
    const count = permitsToAsk(this.#counts(path), this.#permitBatch);
    if (count === 0) return;
    path.asking = true;
    this.#report(path, path.jobs.size);
    this.#throttle!.acquireMessages(this.#refOf(path), count).then(
      (decision) => {
        path.asking = false;
        path.permits += decision.granted;
        if (decision.granted < count) {
          this.#holdSurplus(path, decision.retryInMs);
          this.#retryPermits(path, decision.retryInMs);
        }
        this.#pump(path);
      },
      () => {
        // Throttle backend unreachable (Redis down): send nothing on this path, ask again soon.
        path.asking = false;
        this.#retryPermits(path, 1_000);
      },
    );
  }

  #retryPermits(path: Path<J>, ms: number): void {
    if (this.#stopping || path.permitTimer) return;
    path.permitTimer = setTimeout(
      () => {
        path.permitTimer = undefined;
        this.#pump(path);
      },
      Math.max(1, ms),
    );
    path.permitTimer.unref();
  }

  /** Measures every queued path's pace once per hold horizon, while any path has queued jobs. */
  #armPaceTimer(): void {
    if (this.#paceTimer || this.#stopping) return;
    this.#paceTimer = setTimeout(() => {
      this.#paceTimer = undefined;
      this.#holdSlowPaths();
      for (const path of this.#paths.values()) if (path.jobs.size > 0) return this.#armPaceTimer();
    }, this.#holdHorizonMs);
    this.#paceTimer.unref();
  }

  /**
   * A path whose queue its pace would not send within slowPathKeepHorizons hands the surplus back
   * (a tarpitting MX held every claimed message of its domain, and the claim loop, waiting for room,
   * every other domain). Paths younger than a horizon are measured at the next turn.
   */
  #holdSlowPaths(): void {
    const now = performance.now();
    for (const path of this.#paths.values()) {
      const windowMs = now - path.paceSince;
      if (windowMs < this.#holdHorizonMs) continue;
      const keepForMs = slowPathKeepHorizons * this.#holdHorizonMs;
      const surplus = slowPathSurplus(path.jobs.size, path.taken, windowMs, keepForMs);
      path.taken = 0;
      path.paceSince = now;
      if (surplus === 0 || !this.#options.events.onHold) continue;
      this.#options.events.onHold(path.jobs.takeTail(surplus), keepForMs, path.key);
      this.#forgetIfIdle(path);
    }
  }

  /** A rate-bound path keeps what its rate sends within the horizon; the rest waits in the database. */
  #holdSurplus(path: Path<J>, retryInMs: number): void {
    if (!this.#options.events.onHold) return;
    const surplus = surplusToHold(this.#counts(path), this.#holdHorizonMs, retryInMs);
    if (surplus === 0) return;
    this.#options.events.onHold(path.jobs.takeTail(surplus), this.#holdHorizonMs, path.key);
  }

  #armIdle(connection: Connection): void {
    if (connection.idleTimer) return;
    connection.idleTimer = setTimeout(() => {
      connection.idleTimer = undefined;
      if (connection.inFlight === 0) connection.session.quit();
    }, this.#idleCloseMs);
    connection.idleTimer.unref();
  }

  /** Resolves the path's address and, with shaping, takes a connection lease. */
  async #prepareOpen(path: Path<J>): Promise<Opening> {
    let host = path.key.host;
    if (host === null) {
      if (!path.addresses) {
        const resolution = await this.#options.resolver.resolveAddresses(path.key.mxHost);
        if (resolution.kind === 'failure') return { kind: 'failed', reply: resolution.reply };
        const reachable = addressesToTry(
          path.key.mxHost,
          resolution.addresses,
          path.key.localAddress,
          this.#maxAddresses,
        );
        if (reachable.kind === 'failure') return { kind: 'failed', reply: reachable.reply };
        path.addresses ??= reachable.addresses;
      }
      host = path.addresses[path.addressIndex]!;
    }
    this.#useAddress(path, host);
    const throttle = this.#throttle;
    if (!throttle) return { kind: 'ready', host };
    const decision = await throttle
      .acquireConnection(this.#refOf(path))
      .catch((): { kind: 'wait'; retryInMs: number } => ({ kind: 'wait', retryInMs: 1_000 }));
    if (decision.kind === 'granted' && !this.#stopping) return { kind: 'ready', host, lease: decision.lease };
    if (decision.kind === 'granted') void throttle.releaseConnection(decision.lease);
    // Every slot of the path is leased (here or by another MTA process): ask again later.
    if (!this.#stopping && !path.leaseTimer && decision.kind === 'wait') {
      path.leaseTimer = setTimeout(() => {
        path.leaseTimer = undefined;
        this.#pump(path);
      }, decision.retryInMs);
      path.leaseTimer.unref();
      if (path.jobs.size !== path.reportedWaiting) this.#report(path, path.jobs.size);
    }
    return { kind: 'wait' };
  }

  async #open(path: Path<J>): Promise<void> {
    path.opening++;
    const limits = this.#limitsOf(path);
    const opening = await this.#prepareOpen(path);
    if (opening.kind === 'wait') {
      path.opening--;
      this.#checkStopped();
      return;
    }
    let result: OpenResult;
    if (opening.kind === 'failed') result = { kind: 'failed', reply: opening.reply };
    else {
      const started = performance.now();
      result = await openSmtpSession({
        host: opening.host,
        port: path.key.port,
        servername: path.key.mxHost,
        heloName: path.key.heloName || this.#options.heloName,
        opportunisticTls: limits.tls === undefined ? this.#options.opportunisticTls : limits.tls !== 'disabled',
        requireTls: limits.tls === 'required',
        timeouts: limits.timeouts,
        localAddress: path.key.localAddress || undefined,
      });
      this.#options.timings?.smtpSession(path.key.mxHost, (performance.now() - started) / 1000, result.kind === 'open');
    }
    path.opening--;
    const lease = opening.kind === 'ready' ? opening.lease : undefined;
    if (this.#throttle && opening.kind === 'ready') {
      if (result.kind === 'open') this.#throttle.recordConnection(this.#refOf(path), 'accepted');
      else
        this.#throttle.recordConnection(
          this.#refOf(path),
          result.reply.code === null ? 'unreachable' : 'refused',
          result.reply,
        );
    }
    if (result.kind === 'failed') {
      if (lease) void this.#throttle!.releaseConnection(lease);
      this.#failOpen(path, result.reply);
    } else this.#adopt(path, result.session, lease);
  }

  /** Where the path's connections go now; a change first clears what was reported on the old address. */
  #useAddress(path: Path<J>, host: string): void {
    const mxIp = path.key.port === 25 ? host : `${host}:${path.key.port}`;
    if (path.mxIp === mxIp) return;
    if (path.mxIp !== undefined && path.reportedWaiting > 0) this.#report(path, 0);
    path.mxIp = mxIp;
  }

  /** No connection: with others alive the path works (the server may just limit connections) and
   *  their queue stays; with none, the MX host's next address is tried (RFC 5321 §5.1), and when
   *  none is left nothing queued here can go out now. */
  #failOpen(path: Path<J>, failure: SmtpReply): void {
    if (path.connections.size === 0 && path.opening === 0 && path.jobs.size > 0) {
      const addresses = path.addresses;
      if (addresses && path.addressIndex + 1 < addresses.length && triesNextAddress(failure)) {
        path.addressIndex++;
        this.#useAddress(path, addresses[path.addressIndex]!);
        this.#pump(path);
        return;
      }
      // The next message on this path resolves again and starts from the first address.
      path.addresses = undefined;
      path.addressIndex = 0;
      const jobs = path.jobs.drain();
      if (this.#throttle)
        for (const job of jobs)
          this.#throttle.recordReply(this.#refOf(path), job.domain, failure, this.#options.classify?.(failure));
      this.#options.events.onUnreachable(jobs, failure, path.key);
    }
    this.#forgetIfIdle(path);
    this.#checkStopped();
  }

  #adopt(path: Path<J>, session: SmtpSession, lease: ThrottleLease | undefined): void {
    this.#openCount++;
    if (this.#stopping) {
      session.quit();
      session.onClose(() => {
        if (lease) void this.#throttle!.releaseConnection(lease);
        this.#openCount--;
        this.#checkStopped();
      });
      return;
    }
    const connection: Connection = {
      session,
      started: 0,
      inFlight: 0,
      contentWritten: false,
      lease,
    };
    if (lease) connection.renewTimer = this.#renewWhileOpen(session, lease);
    path.connections.add(connection);
    session.onClose(() => {
      this.#freeAfterClose(path, lease);
      if (connection.idleTimer) clearTimeout(connection.idleTimer);
      if (connection.renewTimer) clearInterval(connection.renewTimer);
      path.connections.delete(connection);
      this.#openCount--;
      this.#checkStopped();
      this.#pump(path);
    });
    this.#pump(path);
  }

  /**
   * Renews a session's lease on a timer, not between transactions: one DATA can take longer than the
   * lease (mta.dataTimeoutMs is 10 min, shaping.connectionLeaseMs 5), and another MTA would be given
   * the slot meanwhile. A lease the throttle no longer holds (Redis restarted without its data)
   * ends the session after its transaction: the next one takes a new lease, so the cap holds. A
   * renewal that fails (Redis not answering) keeps the session; the next tick tries again.
   */
  #renewWhileOpen(session: SmtpSession, lease: ThrottleLease): NodeJS.Timeout {
    const { throttle, renewAfterMs } = this.#options.throttle!;
    const timer = setInterval(() => {
      throttle.renewConnection(lease).then(
        (renewed) => {
          if (!renewed) session.quit();
        },
        () => undefined,
      );
    }, renewAfterMs);
    timer.unref();
    return timer;
  }

  #freeAfterClose(path: Path<J>, lease: ThrottleLease | undefined): void {
    path.draining++;
    const release = () => {
      if (!this.#pendingReleases.delete(release)) return;
      clearTimeout(timer);
      path.draining--;
      if (lease) void this.#throttle!.releaseConnection(lease);
      this.#pump(path);
    };
    this.#pendingReleases.add(release);
    const timer = setTimeout(release, this.#stopping ? 0 : this.#closeGraceMs);
  }

  async #runOn(path: Path<J>, connection: Connection): Promise<void> {
    const job = path.jobs.take();
    if (!job) return;
    path.taken++;
    if (job.prepare) this.#prepareAhead(path);
    connection.inFlight++;
    connection.started++;
    connection.contentWritten = false;
    if (connection.idleTimer) {
      clearTimeout(connection.idleTimer);
      connection.idleTimer = undefined;
    }
    this.#inFlight++;
    try {
      await this.#send(path, connection, job);
    } finally {
      this.#inFlight--;
      connection.inFlight--;
    }
    if (this.#stopping) {
      if (connection.inFlight === 0) connection.session.quit();
      this.#checkStopped();
      return;
    }
    this.#pump(path);
  }

  /**
   * Keeps the jobs next in line prepared (PoolJob.prepare), a few per connection: refilled when
   * half of them have been taken, so the fair-share order is walked once per many messages.
   */
  #prepareAhead(path: Path<J>): void {
    if (path.preparedAhead > 0) path.preparedAhead--;
    const wanted = Math.min(path.connections.size * preparedPerConnection, maxPreparedAhead);
    if (path.preparedAhead > wanted / 2) return;
    const next = path.jobs.peek(wanted);
    for (const job of next) job.prepare?.();
    path.preparedAhead = next.length;
  }

  async #send(path: Path<J>, connection: Connection, job: J): Promise<void> {
    let built: BuildResult;
    try {
      built = await job.build();
    } catch (error) {
      this.#options.events.onBuildError(job, error);
      built = { kind: 'skip' };
    }
    if (built.kind !== 'message') {
      // A skipped job (held by the breaker, our own content failing) used one of the connection's
      // messages too: a spent connection must still end, or it holds its slot and takes nothing.
      this.#quitIfSpent(path, connection);
      return;
    }
    const started = performance.now();
    const result = await connection.session.send(built.envelopeFrom, built.recipient, built.data, () => {
      connection.contentWritten = true;
      this.#pump(path);
    });
    this.#options.timings?.smtpTransaction(path.key.mxHost, (performance.now() - started) / 1000);
    const throttle = this.#throttle;
    if (throttle) {
      const verdict = result.kind === 'accepted' ? undefined : this.#options.classify?.(result.reply);
      throttle.recordReply(this.#refOf(path), job.domain, result.reply, verdict, job.share);
    }
    this.#options.events.onTransaction(job, result, path.key);
    this.#quitIfSpent(path, connection);
  }

  /** The last transaction of a spent connection ends it (a pipelined next one may still be building). */
  #quitIfSpent(path: Path<J>, connection: Connection): void {
    if (connection.started >= this.#limitsOf(path).maxMessagesPerConnection && connection.inFlight === 1)
      connection.session.quit();
  }
}
