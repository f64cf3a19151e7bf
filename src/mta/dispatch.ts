import type { StaleAnswer } from './dns-cache.ts';
import type { MtaTimings } from './timings.ts';
import { localFailure, type SmtpReply } from '../bounce/smtp-reply.ts';
import type { ClassifyReply } from '../bounce/types.ts';
import type { Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import {
  expiredBeforeAttempt,
  failureOutcome,
  heldOutcome,
  releasedOutcome,
  sentOutcome,
  type Attempt,
  type AttemptPolicy,
} from './attempt-policy.ts';
import type { ConnectionPolicy } from './connection-policy.ts';
import {
  createConnectionPool,
  type BuildResult,
  type ConnectionPool,
  type PoolJob,
  type PoolKey,
  type PoolStats,
} from './connection-pool.ts';
import type { CachedDelivery, ContentCache } from './content-cache.ts';
import type { DeliveryStates } from './delivery-states.ts';
import type { AssembledMessage, MessageAssembler, ReadyDelivery } from './message-assembly.ts';
import type { ClaimedLog, DeliveryContent, MtaStore } from './mta-store.ts';
import type { MxHost, MxResolution, MxResolver } from './mx-resolver.ts';
import type { Outcome } from './outcome.ts';
import type { PathThrottleSettings } from './path-throttle.ts';
import type { TransactionResult } from './smtp-client.ts';
import type { SourceAddress, SourceChooser, SourceSelector } from './source-selection.ts';
import { groupBy } from '../common/group-by.ts';

// From claimed logs to SMTP transactions: grouped by delivery (content, state, validity) and by
// domain (breaker, MX resolution), a source address chosen per message (affinity), handed to the
// per-path connection pools. Every message ends as one Outcome handed to `finish`, decided by the
// attempt policy.

/** What the MTA needs from traffic shaping besides the pool's throttle. */
export interface MtaShaping extends PathThrottleSettings {
  /** Replaces `connectionPolicy`: limits per MX host and source public id. */
  policy: ConnectionPolicy;
  sources: SourceChooser;
  /** Error-density breaker: a suspended domain's messages wait in the database until `until`. */
  checkDomain(domain: string): { kind: 'open' } | { kind: 'suspended'; suspension: { until: number }; message: string };
  /** Given the names the MX resolver answers stale, for the snapshots `herald mx stats` shows. */
  reportDnsStale?(source: () => StaleAnswer[]): void;
}

/** How long messages of a delivery whose affinity cannot be used wait before the next look. */
export const sourceProblemRetryMs = 60_000;
/** Prefix of the deliveries.last_error the MTA writes (and clears once the problem is gone). */
export const heldPrefix = 'sending held: ';

export interface DispatcherOptions {
  store: Pick<MtaStore, 'noteDeliveryProblem'>;
  config: Pick<
    HeraldConfig['mta'],
    | 'heloName'
    | 'opportunisticTls'
    | 'retryDelaysSeconds'
    | 'greylistRetrySeconds'
    | 'connectionCloseGraceMs'
    | 'holdHorizonMs'
    | 'maxAddressesPerMxHost'
  >;
  clock: Clock;
  logger: Logger;
  classify: ClassifyReply;
  resolver: MxResolver;
  policy: ConnectionPolicy;
  shaping: MtaShaping | undefined;
  /** The port MX hosts found in DNS are reached on (default 25); a route names its own. */
  mxPort?: number;
  sources: SourceSelector | undefined;
  /** Session and transaction durations (metrics). */
  timings?: MtaTimings | undefined;
  contentCache: ContentCache;
  /** Whether a delivery is still in progress, asked again as each queued message's turn comes. */
  deliveryStates: DeliveryStates;
  assembler: MessageAssembler;
  /** Every dispatched message ends here, exactly once. */
  finish(outcome: Outcome): void;
  /** Whether a claimed message may still start its transaction (not stopping, its claim safely held). */
  mayStart(now: number): boolean;
}

export interface Dispatcher {
  dispatch(claimed: readonly ClaimedLog[]): Promise<void>;
  stats(): PoolStats;
  /** Starts no more transactions; queued messages come back released; resolves when connections are closed. */
  stop(): Promise<void>;
}

interface MessageJob extends PoolJob {
  log: ClaimedLog;
  delivery: DeliveryContent;
  ready: ReadyDelivery;
  hosts: MxHost[];
  hostIndex: number;
  /** Affinity address chosen for this message (shaping), and the ones that already failed to connect. */
  source?: SourceAddress;
  failedSources?: Set<string>;
  /** The message assembled ahead of its turn (prepare()), used by build(). */
  assembled?: Promise<AssembledMessage>;
}

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  return new MessageDispatcher(options);
}

class MessageDispatcher implements Dispatcher {
  readonly #options: DispatcherOptions;
  readonly #policy: AttemptPolicy;
  readonly #pool: ConnectionPool<MessageJob>;
  /** What this process last wrote to deliveries.last_error, per delivery (null = cleared). */
  readonly #noted = new Map<number, string | null>();
  #stopping = false;

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#policy = {
      retryDelaysSeconds: options.config.retryDelaysSeconds,
      greylistRetrySeconds: options.config.greylistRetrySeconds,
    };
    const { clock, logger, sources } = options;
    this.#pool = createConnectionPool<MessageJob>({
      policy: options.policy,
      resolver: options.resolver,
      heloName: options.config.heloName,
      opportunisticTls: options.config.opportunisticTls,
      closeGraceMs: options.config.connectionCloseGraceMs,
      holdHorizonMs: options.config.holdHorizonMs,
      maxAddressesPerHost: options.config.maxAddressesPerMxHost,
      throttle: options.shaping,
      classify: options.classify,
      ...(options.timings && { timings: options.timings }),
      events: {
        onTransaction: (job, result, key) => this.#finishTransaction(job, result, key),
        onHold: (jobs, retryInMs) => {
          const retryAt = clock.now() + retryInMs;
          for (const job of jobs) options.finish(heldOutcome(this.#attempt(job.log, job.delivery.validUntil), retryAt));
        },
        onUnreachable: (jobs, reply, key) => {
          if (key.localAddress && !refusesClient(reply))
            sources?.markUnreachable(key.localAddress, key.mxHost, clock.now());
          for (const job of jobs) this.#retryElsewhere(job, reply, key);
        },
        onBuildError: (job, error) => {
          logger.error({ err: describeError(error), logId: job.log.id }, 'building a message failed');
          this.#release(job.log);
        },
      },
    });
  }

  async dispatch(claimed: readonly ClaimedLog[]): Promise<void> {
    const now = this.#options.clock.now();
    await Promise.all(
      [...groupBy(claimed, (log) => log.deliveryId)].map(([deliveryId, logs]) =>
        this.#dispatchDelivery(deliveryId, logs, now),
      ),
    );
  }

  stats(): PoolStats {
    return this.#pool.stats();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const notStarted = await this.#pool.stop();
    for (const job of notStarted) this.#release(job.log);
  }

  #attempt(log: ClaimedLog, validUntil: number | null): Attempt {
    return { log, validUntil, at: this.#options.clock.now() };
  }

  #fail(log: ClaimedLog, validUntil: number | null, mxHost: string | null, reply: SmtpReply): void {
    const verdict = this.#options.classify(reply);
    this.#options.finish(failureOutcome(this.#policy, this.#attempt(log, validUntil), mxHost, reply, verdict));
  }

  #release(log: ClaimedLog): void {
    this.#options.finish(releasedOutcome(this.#attempt(log, null)));
  }

  #finishTransaction(job: MessageJob, result: TransactionResult, key: PoolKey): void {
    if (result.kind === 'accepted')
      this.#options.finish(sentOutcome(this.#attempt(job.log, job.delivery.validUntil), key.mxHost, result.reply));
    else this.#fail(job.log, job.delivery.validUntil, key.mxHost, result.reply);
  }

  /** No connection to the path: another source address (when the MX was not reached), then the
   *  next MX host, before failing. */
  #retryElsewhere(job: MessageJob, reply: SmtpReply, key: PoolKey): void {
    // Affinity: another address of the pool may reach this MX (weights re-normalize without this one).
    if (key.localAddress && !refusesClient(reply) && this.#rechooseSource(job, key.localAddress))
      return this.#enqueue(job);
    // RFC 5321 §5.1: try the next MX host before giving up on this attempt.
    if (job.hostIndex + 1 < job.hosts.length) {
      job.hostIndex++;
      return this.#enqueue(job);
    }
    this.#fail(job.log, job.delivery.validUntil, key.mxHost, reply);
  }

  #rechooseSource(job: MessageJob, failed: string): boolean {
    (job.failedSources ??= new Set()).add(failed);
    const host = job.hosts[job.hostIndex]!.name;
    const choice = this.#options.sources!.choose(
      job.delivery.affinity,
      job.log.domain,
      host,
      this.#options.clock.now(),
      job.log.email,
    );
    if (choice.kind !== 'chosen' || job.failedSources.has(choice.source.address)) return false;
    job.source = choice.source;
    return true;
  }

  /** deliveries.last_error tells the operator why messages are held; written only when it changes. */
  #noteProblem(delivery: DeliveryContent, message: string | null): void {
    const { logger, store, clock } = this.#options;
    const text = message === null ? null : `${heldPrefix}${message}`;
    const previous = this.#noted.has(delivery.id)
      ? this.#noted.get(delivery.id)
      : delivery.lastError?.startsWith(heldPrefix)
        ? delivery.lastError
        : null;
    if (previous === text) return;
    this.#noted.set(delivery.id, text);
    if (text)
      logger.warn({ deliveryId: delivery.id, reason: message }, 'messages held: cannot choose a source address');
    store
      .noteDeliveryProblem?.(delivery.id, text, clock.now())
      .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'writing the delivery problem failed'));
  }

  #enqueue(job: MessageJob): void {
    if (this.#stopping) return this.#release(job.log);
    const host = job.hosts[job.hostIndex]!;
    const source = job.source;
    const target = {
      mxHost: host.name,
      host: host.route?.host ?? null,
      port: host.route?.port ?? this.#options.mxPort ?? 25,
    };
    this.#pool.enqueue(
      source
        ? { ...target, localAddress: source.address, heloName: source.heloName, publicId: source.publicId }
        : target,
      job,
    );
  }

  /** Assembles (renders and signs) ahead of the job's turn, with no outcome: build() decides. */
  #prepare(job: MessageJob): void {
    if (job.assembled) return;
    job.assembled = this.#options.assembler.assemble(job.log, job.ready, this.#options.clock.now());
    // A failure is build()'s to report, when the job's turn comes.
    job.assembled.catch(() => {});
  }

  async #build(job: MessageJob): Promise<BuildResult> {
    const now = this.#options.clock.now();
    // Not stopping, and its delivery neither paused nor stopped since the claim: a pause or a stop
    // holds the messages already queued here too, not only the next claims.
    if (!this.#options.mayStart(now) || !(await this.#options.deliveryStates.sending(job.delivery.id, now))) {
      this.#release(job.log);
      return { kind: 'skip' };
    }
    // The breaker may have suspended the domain while the job waited in the pool (a claim queues
    // up to claimBatchSize messages of one domain): checked again at its turn, or a wall of 550s
    // kept being fed until the queue was empty (2,000 of 2,000 sent after a trip at 300).
    const check = this.#options.shaping?.checkDomain(job.domain);
    if (check?.kind === 'suspended') {
      this.#options.finish(heldOutcome(this.#attempt(job.log, job.delivery.validUntil), check.suspension.until));
      return { kind: 'skip' };
    }
    const assembled = job.assembled ?? this.#options.assembler.assemble(job.log, job.ready, now);
    job.assembled = undefined; // the job outlives its message (until its outcome is written)
    const message = await assembled;
    if (message.kind === 'message') return message;
    this.#fail(job.log, job.delivery.validUntil, null, localFailure('content_error', message.error));
    return { kind: 'skip' };
  }

  async #dispatchDelivery(deliveryId: number, logs: ClaimedLog[], now: number): Promise<void> {
    let cached: CachedDelivery;
    try {
      cached = await this.#options.contentCache.get(deliveryId, now);
    } catch (error) {
      this.#options.logger.error({ err: describeError(error), deliveryId }, 'loading delivery content failed');
      for (const log of logs) this.#release(log);
      return;
    }
    // Paused or stopped since the claim: hand the logs back untouched.
    if (cached.kind === 'missing' || cached.content.state !== 'in_progress') {
      for (const log of logs) this.#release(log);
      return;
    }
    if (cached.kind === 'broken') {
      for (const log of logs)
        this.#fail(log, cached.content.validUntil, null, localFailure('content_error', cached.error));
      return;
    }
    const ready = cached;
    const problems = await Promise.all(
      [...groupBy(logs, (log) => log.domain)].map(([domain, domainLogs]) =>
        this.#dispatchDomain(ready, domain, domainLogs, now),
      ),
    );
    if (this.#options.sources) this.#noteProblem(ready.content, problems.find((problem) => problem !== null) ?? null);
  }

  /** Returns the source problem that held messages back (unknown affinity, no address), or null. */
  async #dispatchDomain(ready: ReadyDelivery, domain: string, logs: ClaimedLog[], now: number): Promise<string | null> {
    const { finish, shaping } = this.#options;
    const validUntil = ready.content.validUntil;
    const live: ClaimedLog[] = [];
    for (const log of logs) {
      const expired = expiredBeforeAttempt({ log, validUntil, at: now });
      if (expired) finish(expired);
      else live.push(log);
    }
    if (live.length === 0) return null;
    const check = shaping?.checkDomain(domain);
    if (check?.kind === 'suspended') {
      for (const log of live) finish(heldOutcome(this.#attempt(log, validUntil), check.suspension.until));
      return null;
    }
    let resolution: MxResolution;
    try {
      resolution = await this.#options.resolver.resolveDomain(domain);
    } catch (error) {
      resolution = { kind: 'failure', reply: localFailure('dns_temporary', describeError(error)) };
    }
    if (resolution.kind === 'failure') {
      for (const log of live) this.#fail(log, validUntil, null, resolution.reply);
      return null;
    }
    let problem: string | null = null;
    const { id: deliveryId, priority, weight } = ready.content;
    const share = { deliveryId, priority, weight };
    for (const log of live) {
      const job: MessageJob = {
        logId: log.id,
        domain,
        share,
        log,
        delivery: ready.content,
        ready,
        hosts: resolution.hosts,
        hostIndex: 0,
        build: () => this.#build(job),
      };
      if (this.#options.assembler.waitsForSigner) job.prepare = () => this.#prepare(job);
      const sources = this.#options.sources;
      if (sources) {
        const choice = sources.choose(ready.content.affinity, domain, resolution.hosts[0]!.name, now, log.email);
        if (choice.kind !== 'chosen') {
          problem ??= choice.message;
          finish(heldOutcome(this.#attempt(log, validUntil), now + sourceProblemRetryMs));
          continue;
        }
        job.source = choice.source;
      }
      this.#enqueue(job);
    }
    return problem;
  }
}

/**
 * The MX host answered and refused this client (a 554 greeting, RFC 5321 §3.1: typically its IP
 * on a blocklist; a 421 from a busy or rate-limiting host): the message keeps its source address.
 * Sending it again from another address of the affinity is snowshoeing, which gets the whole pool
 * listed. The next MX host is still tried from the same address, as the block may be that host's
 * own, and with none left the reply is the attempt's, qualified like any other (`blocked`: soft).
 */
function refusesClient(reply: SmtpReply): boolean {
  return reply.code !== null;
}
