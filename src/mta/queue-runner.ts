import { availableParallelism } from 'node:os';
import type { MtaTimings } from './timings.ts';
import { defaultVerdict } from '../bounce/default-verdict.ts';
import type { SmtpReply } from '../bounce/smtp-reply.ts';
import type { ClassifyReply, Verdict } from '../bounce/types.ts';
import { systemClock, type Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { releasedOutcome } from './attempt-policy.ts';
import { createClaimLease, type ClaimLease } from './claim-lease.ts';
import { globalConnectionPolicy, type ConnectionPolicy } from './connection-policy.ts';
import { createContentCache, type MessageDecorator } from './content-cache.ts';
import { createDeliveryStates } from './delivery-states.ts';
import { createDispatcher, type MtaShaping } from './dispatch.ts';
import { loadDkimKeys, type DkimKey } from './dkim.ts';
import type { DkimSigner } from './dkim-signer.ts';
import { createMessageAssembler } from './message-assembly.ts';
import { registerMtaNode, thisProcess, type ProcessIdentity } from './node-registration.ts';
import type { Store } from '../store/database.ts';
import type { MtaStore } from './mta-store.ts';
import { createRateMeter, type MtaStats } from './mta-stats.ts';
import { createMtaResolver } from './mta-resolver.ts';
import type { DnsClient } from './mx-resolver.ts';
import type { Outcome } from './outcome.ts';
import { createOutcomeWriter } from './outcome-writer.ts';
import { createSourceSelector } from './source-selection.ts';

// The MTA's runner: claims due delivery logs in batches, hands them to dispatch (dispatch.ts:
// grouping, breaker, MX and source choice, connection pools; message-assembly.ts builds each
// message), and writes each outcome as soon as its SMTP transaction ends (group commit). It keeps
// the loop, the claim leases and the stop; what an attempt comes to is attempt-policy.ts's.

export type MtaConfig = HeraldConfig['mta'];

export interface MtaOptions {
  store: MtaStore;
  /** Owner of claims, held by this process in mta_nodes while it runs; a restarted node with the
   *  same id takes its claims back at start. */
  nodeId: string;
  /** The id to use when `nodeId` is held by another live process (an implicit default id); absent =
   *  start() refuses with NODE_ID_IN_USE. */
  nodeIdFallback?: string;
  /** This process (host, pid); default: the running one. */
  identity?: ProcessIdentity;
  config: MtaConfig;
  clock?: Clock;
  logger?: Logger;
  /** Qualifies replies; defaults to defaultVerdict (src/bounce/ provides the rule-based one). */
  classify?: ClassifyReply;
  /** DNS client; defaults to node's resolver on config.resolverServers. */
  dns?: DnsClient;
  /** The port MX hosts found in DNS are reached on; default 25 (tests point it at a sink on loopback). */
  mxPort?: number;
  /** Connection limits per MX host; defaults to the global config caps. */
  connectionPolicy?: ConnectionPolicy;
  /** Parsed DKIM keys by From domain; defaults to loading config.dkim (throws DKIM_KEY_INVALID). */
  dkimKeys?: Map<string, DkimKey[]>;
  /** Where signatures are computed; defaults to config.dkimWorkers worker threads, or the main thread when 0. Closed by stop(). */
  dkimSigner?: DkimSigner;
  /** Least time between two outcome writes (group commit); default 10 ms, which is also about the
   *  most a kill -9 can forget of finished transactions. */
  outcomeFlushIntervalMs?: number;
  /** How often a delivery's state is read again as its queued messages start (a pause or stop
   *  holds them within this); default 1,000 ms. */
  deliveryStateRefreshMs?: number;
  /** Link tracking, open pixel and List-Unsubscribe headers (src/tracking's createMessageDecorator). */
  decorator?: MessageDecorator;
  /** Signed VERP envelope sender (src/bounce/verp.ts); default unsigned, which inbound refuses. */
  envelopeSender?(logId: number, bounceDomain: string): string;
  /** Written in the same transaction as each batch of outcomes holding a failure (the quarantine's
   *  address events): an outcome and what it causes commit together, or neither does and the batch
   *  is retried. */
  outcomeEffects?: (trx: Store, outcomes: readonly Outcome[]) => Promise<void>;
  /** Called as each SMTP transaction ends, before its outcome is written (the mass-rejection guard
   *  counts answers here, so a domain refusing everyone is suspended without waiting for a commit). */
  onFinished?: (outcome: Outcome) => void;
  /** Called after each batch of outcomes is committed (unmatched replies for the qualification table, metrics). */
  onOutcomes?: (outcomes: readonly Outcome[]) => void;
  /** MX rules, throttles, affinities and the breaker (src/shaping via createMtaShaping); absent = global caps only. */
  shaping?: MtaShaping;
  /** SMTP session, transaction and DKIM signing durations (the metrics registry); absent = not measured. */
  timings?: MtaTimings;
}

export interface Mta {
  /** Takes back this node's claims left by a crash, then starts claiming. */
  start(): Promise<void>;
  /** Graceful: stops claiming, lets open SMTP transactions finish, writes their outcomes, releases
   *  unsent claims to pending; resolves when nothing of this node is 'sending'. */
  stop(): Promise<void>;
  stats(): MtaStats;
  /** Look for due messages now instead of at the next poll. */
  wake(): void;
  /** Resolves once nothing is due, nothing is held in memory and every outcome is written. */
  drain(): Promise<void>;
}

export function createMta(options: MtaOptions): Mta {
  return new QueueRunner(options);
}

/** How often a sending MTA folds the crowded delivery log counters (PostgreSQL; see MtaStore.foldLogCounts). */
const foldEveryMs = 10_000;

/** The parts the runner drives: outcomes out (writer), messages in (dispatcher). */
function createParts(
  options: MtaOptions,
  nodeId: () => string,
  finish: (outcome: Outcome) => void,
  mayStart: (now: number) => boolean,
  written: () => void,
) {
  const { store, config, shaping } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const writer = createOutcomeWriter({
    write: (outcomes) => {
      // A batch of deliveries and releases only causes nothing: it stays one statement, no BEGIN/COMMIT.
      const effects = outcomes.some(isFailure) ? options.outcomeEffects : undefined;
      return store.recordOutcomes(nodeId(), outcomes, effects && ((trx) => effects(trx, outcomes)));
    },
    onWritten: (outcomes) => {
      options.onOutcomes?.(outcomes);
      written();
    },
    minIntervalMs: options.outcomeFlushIntervalMs ?? 10,
    onError: (error, retryInMs) =>
      logger.error({ err: describeError(error), retryInMs }, 'writing delivery outcomes failed; retrying'),
  });
  // Worker threads are started by start() and ended by stop(), so an MTA never started leaks none.
  const assembler = createMessageAssembler({
    dkimKeys: options.dkimKeys ?? loadDkimKeys(config.dkim),
    ...(options.dkimSigner && { dkimSigner: options.dkimSigner }),
    dkimWorkers: config.dkimWorkers === 'auto' ? Math.min(4, availableParallelism()) : config.dkimWorkers,
    bounceDomain: config.bounceDomain,
    ...(options.envelopeSender && { envelopeSender: options.envelopeSender }),
    ...(options.timings && { timings: options.timings }),
  });
  const dispatcher = createDispatcher({
    store,
    config,
    clock,
    logger,
    // One verdict per reply: the pool hands it to shaping's breaker, the outcome reuses it.
    classify: rememberVerdicts(options.classify ?? defaultVerdict),
    resolver: createMtaResolver({ config, clock, logger, dns: options.dns, shaping }),
    policy:
      shaping?.policy ??
      options.connectionPolicy ??
      globalConnectionPolicy({
        maxConnections: config.maxConnectionsPerMx,
        maxMessagesPerConnection: config.maxMessagesPerConnection,
        timeouts: {
          connectTimeoutMs: config.connectTimeoutMs,
          commandTimeoutMs: config.commandTimeoutMs,
          dataTimeoutMs: config.dataTimeoutMs,
        },
      }),
    shaping,
    ...(options.mxPort !== undefined && { mxPort: options.mxPort }),
    sources: shaping ? createSourceSelector(shaping.sources) : undefined,
    contentCache: createContentCache(store, options.decorator ?? null),
    deliveryStates: createDeliveryStates((id) => store.deliveryState(id), options.deliveryStateRefreshMs),
    timings: options.timings,
    assembler,
    finish,
    mayStart,
  });
  return { writer, assembler, dispatcher };
}

class QueueRunner implements Mta {
  readonly #options: MtaOptions;
  readonly #store: MtaStore;
  #nodeId: string;
  readonly #identity: ProcessIdentity;
  readonly #config: MtaConfig;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #leaseMs: number;
  readonly #lease: ClaimLease;
  readonly #parts: ReturnType<typeof createParts>;
  readonly #rate = createRateMeter();
  readonly #counters = { sent: 0, deferred: 0, failed: 0, released: 0 };
  #running = false;
  #stopping = false;
  /** Claimed messages not yet finished (dispatching, queued in a pool, in a transaction). */
  #inHand = 0;
  /** Sent or failed outcomes since deliveries were last checked for completion. */
  #finalsSinceFinish = 0;
  #lastFoldAt = 0;
  #loopDone: Promise<void> = Promise.resolve();
  #wakeUp: (() => void) | null = null;
  /** True while the loop sleeps because memory holds maxQueued/2 messages or more. */
  #waitingForRoom = false;
  /** True from the first claim held back by unwritten outcomes until they are written. */
  #pausedForOutcomes = false;
  readonly #drainWaiters: Array<() => void> = [];
  readonly #handWaiters: Array<() => void> = [];

  constructor(options: MtaOptions) {
    this.#options = options;
    this.#store = options.store;
    this.#nodeId = options.nodeId;
    this.#identity = options.identity ?? thisProcess;
    this.#config = options.config;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#leaseMs = options.config.claimLeaseSeconds * 1_000;
    this.#lease = createClaimLease({
      store: options.store,
      nodeId: () => this.#nodeId,
      pid: this.#identity.pid,
      leaseMs: this.#leaseMs,
      logger: this.#logger,
    });
    this.#parts = createParts(
      options,
      () => this.#nodeId,
      (outcome) => this.#finish(outcome),
      (now) => !this.#stopping && this.#lease.safeAt(now),
      () => this.#outcomesWritten(),
    );
  }

  async start(): Promise<void> {
    if (this.#running) return;
    const now = this.#clock.now();
    this.#nodeId = await registerMtaNode({
      store: this.#store,
      nodeId: this.#options.nodeId,
      fallbackNodeId: this.#options.nodeIdFallback,
      identity: this.#identity,
      now,
      ttlMs: this.#leaseMs,
      logger: this.#logger,
    });
    // Anything still 'sending' under our id is from a previous life of this node (crash, kill -9):
    // no live process holds the id (registerMtaNode), so none of these claims is being sent.
    const taken = await this.#store.releaseClaims(this.#nodeId, now);
    if (taken > 0) this.#logger.warn({ released: taken }, 'took back claims left by a previous run of this node');
    this.#parts.assembler.start();
    this.#running = true;
    this.#stopping = false;
    this.#lease.restart(now);
    this.#loopDone = this.#loop();
  }

  async stop(): Promise<void> {
    if (!this.#running && !this.#stopping) return;
    const { writer, dispatcher, assembler } = this.#parts;
    this.#running = false;
    this.#stopping = true;
    this.wake();
    await this.#loopDone;
    await dispatcher.stop();
    if (this.#inHand > 0) await new Promise<void>((resolve) => this.#handWaiters.push(resolve));
    await writer.flush();
    await this.#store.releaseClaims(this.#nodeId, this.#clock.now());
    await this.#store.unregisterNode(this.#nodeId, this.#identity.pid);
    this.#finalsSinceFinish = Math.max(this.#finalsSinceFinish, 1);
    await this.#finishDeliveries(this.#clock.now());
    await assembler.close();
    for (const waiter of this.#drainWaiters.splice(0)) waiter();
  }

  stats(): MtaStats {
    const poolStats = this.#parts.dispatcher.stats();
    return {
      ...this.#counters,
      inFlight: poolStats.inFlight,
      queued: Math.max(0, this.#inHand - poolStats.inFlight),
      connectionsOpen: poolStats.connectionsOpen,
      paths: poolStats.paths,
      msgsPerSec: this.#rate.rate(this.#clock.now()),
    };
  }

  wake(): void {
    const resolve = this.#wakeUp;
    this.#wakeUp = null;
    resolve?.();
  }

  drain(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#drainWaiters.push(resolve);
      this.wake();
    });
  }

  #finish(outcome: Outcome): void {
    this.#options.onFinished?.(outcome);
    this.#parts.writer.add(outcome);
    const counters = this.#counters;
    if (outcome.kind === 'sent') {
      counters.sent++;
      this.#rate.add(outcome.at);
    } else if (outcome.kind === 'deferred') counters.deferred++;
    else if (outcome.kind === 'failed') counters.failed++;
    else counters.released++;
    if (outcome.kind === 'sent' || outcome.kind === 'failed') this.#finalsSinceFinish++;
    this.#inHand--;
    if (this.#waitingForRoom && this.#inHand < this.#config.maxQueued / 2) this.wake();
    if (this.#inHand === 0) for (const waiter of this.#handWaiters.splice(0)) waiter();
  }

  #outcomesWritten(): void {
    const unwritten = this.#parts.writer.pending;
    if (this.#pausedForOutcomes && unwritten < this.#config.maxQueued / 2) {
      this.#pausedForOutcomes = false;
      this.#logger.warn({ unwrittenOutcomes: unwritten }, 'sending resumed: the outcomes held back are written');
    }
    if (this.#waitingForRoom && this.#inHand + unwritten < this.#config.maxQueued / 2) this.wake();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.#wakeUp = null;
          resolve();
        },
        Math.max(0, ms),
      );
      this.#wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #finishDeliveries(now: number): Promise<void> {
    if (this.#finalsSinceFinish === 0) return;
    this.#finalsSinceFinish = 0;
    await this.#parts.writer.flush();
    const finished = await this.#store.finishCompletedDeliveries(now);
    for (const deliveryId of finished) this.#logger.info({ deliveryId }, 'delivery finished');
    if (now - this.#lastFoldAt >= foldEveryMs) {
      this.#lastFoldAt = now;
      await this.#store
        .foldLogCounts()
        .catch((error: unknown) =>
          this.#logger.warn({ err: describeError(error) }, 'folding the delivery log counters failed'),
        );
    }
  }

  async #loop(): Promise<void> {
    const config = this.#config;
    let lastFinishAt = 0;
    while (this.#running) {
      try {
        const now = this.#clock.now();
        await this.#lease.maintain(now);
        // A message sent whose outcome is not written yet exists only in memory (a crash sends it
        // again): unwritten outcomes take room like messages in hand, so a database that refuses
        // them (full, locked, failing) stops the sending instead of letting it run unrecorded.
        const unwritten = this.#parts.writer.pending;
        if (this.#inHand + unwritten >= config.maxQueued / 2) {
          if (unwritten >= config.maxQueued / 2 && !this.#pausedForOutcomes) {
            this.#pausedForOutcomes = true;
            this.#logger.warn(
              { unwrittenOutcomes: unwritten },
              'sending paused: outcomes wait to be written to the database; claiming resumes once they are',
            );
          }
          this.#waitingForRoom = true;
          await this.#sleep(config.pollIntervalMs);
          this.#waitingForRoom = false;
          continue;
        }
        const limit = Math.min(config.claimBatchSize, config.maxQueued - this.#inHand - unwritten);
        const claimed = await this.#store.claimDue(this.#nodeId, now, limit, this.#leaseMs);
        this.#inHand += claimed.length;
        if (!this.#running) {
          for (const log of claimed) this.#finish(releasedOutcome({ log, validUntil: null, at: this.#clock.now() }));
          break;
        }
        if (claimed.length > 0) {
          void this.#parts.dispatcher
            .dispatch(claimed)
            .catch((error: unknown) =>
              this.#logger.error({ err: describeError(error) }, 'dispatching claimed messages failed'),
            );
          if (now - lastFinishAt >= 1_000) {
            lastFinishAt = now;
            await this.#finishDeliveries(now);
          }
          continue;
        }
        await this.#idle(now);
      } catch (error) {
        this.#logger.error({ err: describeError(error) }, 'MTA claim loop failed; retrying');
        await this.#sleep(config.pollIntervalMs);
      }
    }
  }

  /** Nothing was due: settle drain() callers, then sleep until the next due message or the poll. */
  async #idle(now: number): Promise<void> {
    const config = this.#config;
    // Nothing in hand and every outcome written: what is due now is what the database says. (A
    // message in hand may finish during the awaits below; its outcome is then not written yet.)
    const settled = this.#inHand === 0;
    if (settled) {
      await this.#finishDeliveries(now);
      await this.#parts.writer.flush();
    }
    const next = await this.#store.nextDueAt();
    // Messages handed back while this loop looked (a build that failed: its signing worker could not
    // start) are due again once their outcomes are written: drain() waits for them too.
    if (settled && (next === null || next > this.#clock.now()))
      for (const waiter of this.#drainWaiters.splice(0)) waiter();
    await this.#sleep(
      next === null ? config.pollIntervalMs : Math.min(config.pollIntervalMs, Math.max(next - now, 20)),
    );
  }
}

/** The classifier, computed once per reply object (the pool and the outcome both ask). */
function rememberVerdicts(classify: ClassifyReply): ClassifyReply {
  const verdicts = new WeakMap<SmtpReply, Verdict>();
  return (reply) => {
    let verdict = verdicts.get(reply);
    if (!verdict) {
      verdict = classify(reply);
      verdicts.set(reply, verdict);
    }
    return verdict;
  };
}

function isFailure(outcome: Outcome): boolean {
  return outcome.kind === 'failed' || outcome.kind === 'deferred';
}
