import { personalizationOf } from '../delivery/content.ts';
import { systemClock, type Clock } from '../common/clock.ts';
import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { globalConnectionPolicy, type ConnectionPolicy } from './connection-policy.ts';
import { createConnectionPool, type BuildResult, type PoolJob, type PoolKey } from './connection-pool.ts';
import { createContentCache, type CachedDelivery, type MessageDecorator } from './content-cache.ts';
import { defaultVerdict } from './default-verdict.ts';
import { loadDkimKeys, type DkimKey } from './dkim.ts';
import { mainThreadSigner, type DkimSigner } from './dkim-signer.ts';
import { createWorkerSigner } from './dkim-workers.ts';
import { createMessageBuilder, serializeMessage } from './message-builder.ts';
import type { ClaimedLog, DeliveryContent, MtaStore } from './mta-store.ts';
import { createRateMeter, type MtaStats } from './mta-stats.ts';
import { createDnsClient, createMxResolver, type DnsClient, type MxHost, type MxResolution, type MxResolver } from './mx-resolver.ts';
import type { Outcome } from './outcome.ts';
import { createOutcomeWriter } from './outcome-writer.ts';
import type { PathThrottleSettings } from './path-throttle.ts';
import { isExpired, scheduleRetry } from './retry-schedule.ts';
import { compileRoutes } from './routes.ts';
import type { TransactionResult } from './smtp-client.ts';
import { localFailure, type ClassifyReply, type SmtpReply, type Verdict } from './smtp-reply.ts';
import { createSourceSelector, type SourceAddress, type SourceChooser } from './source-selection.ts';

// The MTA: claims due delivery logs in batches, resolves their domains, hands them to per-path
// connection pools, and writes each outcome as soon as its SMTP transaction ends (group commit).
// Timers live here; decisions (retry schedule, verdicts, routes, message building) are pure.

export type MtaConfig = HeraldConfig['mta'];

export interface MtaOptions {
  store: MtaStore;
  /** Owner of claims; a restarted node with the same id takes its claims back at start. */
  nodeId: string;
  config: MtaConfig;
  clock?: Clock;
  logger?: Logger;
  /** Qualifies replies; defaults to defaultVerdict (src/bounce/ provides the rule-based one). */
  classify?: ClassifyReply;
  /** DNS client; defaults to node's resolver on config.resolverServers. */
  dns?: DnsClient;
  /** Connection limits per MX host; defaults to the global config caps. */
  connectionPolicy?: ConnectionPolicy;
  /** Parsed DKIM keys by From domain; defaults to loading config.dkim (throws DKIM_KEY_INVALID). */
  dkimKeys?: Map<string, DkimKey[]>;
  /** Where signatures are computed; defaults to config.dkimWorkers worker threads, or the main thread when 0. Closed by stop(). */
  dkimSigner?: DkimSigner;
  /** Least time between two outcome writes (group commit); default 10 ms, which is also about the
   *  most a kill -9 can forget of finished transactions. */
  outcomeFlushIntervalMs?: number;
  /** Link tracking, open pixel and List-Unsubscribe headers (src/tracking's createMessageDecorator). */
  decorator?: MessageDecorator;
  /** Called after each batch of outcomes is committed (quarantine updates, metrics). */
  onOutcomes?: (outcomes: readonly Outcome[]) => void;
  /** MX rules, throttles, affinities and the breaker (src/shaping via createMtaShaping); absent = global caps only. */
  shaping?: MtaShaping;
}

/** What the MTA needs from traffic shaping besides the pool's throttle. */
export interface MtaShaping extends PathThrottleSettings {
  /** Replaces `connectionPolicy`: limits per MX host and source public id. */
  policy: ConnectionPolicy;
  sources: SourceChooser;
  /** Error-density breaker: a suspended domain's messages wait in the database until `until`. */
  checkDomain(domain: string): { kind: 'open' } | { kind: 'suspended'; suspension: { until: number }; message: string };
}

/** How long messages of a delivery whose affinity cannot be used wait before the next look. */
export const sourceProblemRetryMs = 60_000;
/** Prefix of the deliveries.last_error the MTA writes (and clears once the problem is gone). */
export const heldPrefix = 'sending held: ';

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

interface MessageJob extends PoolJob {
  log: ClaimedLog;
  delivery: DeliveryContent;
  cached: Extract<CachedDelivery, { kind: 'ready' }>;
  hosts: MxHost[];
  hostIndex: number;
  /** Affinity address chosen for this message (shaping), and the ones that already failed to connect. */
  source?: SourceAddress;
  failedSources?: Set<string>;
}

const expiredReply = (): SmtpReply => localFailure('expired', 'the delivery validity period ended before the message could be delivered');

export function createMta(options: MtaOptions): Mta {
  const { store, nodeId, config } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  // One verdict per reply: the pool hands it to shaping's breaker, the outcome reuses it.
  const classify = rememberVerdicts(options.classify ?? defaultVerdict);
  const dkimKeys = options.dkimKeys ?? loadDkimKeys(config.dkim);
  const allKeys = [...dkimKeys.values()].flat();
  // Worker threads are started by start() and ended by stop(), so an MTA never started leaks none.
  const useWorkers = !options.dkimSigner && config.dkimWorkers > 0 && allKeys.length > 0;
  let signer: DkimSigner = options.dkimSigner ?? mainThreadSigner;
  const leaseMs = config.claimLeaseSeconds * 1_000;
  const resolver: MxResolver = createMxResolver({
    dns: options.dns ?? createDnsClient(config.resolverServers),
    routes: compileRoutes(config.routes),
    clock,
    maxCacheSeconds: config.mxCacheMaxSeconds,
  });
  const shaping = options.shaping;
  const sources = shaping ? createSourceSelector(shaping.sources) : undefined;
  // What this process last wrote to deliveries.last_error, per delivery (null = cleared).
  const noted = new Map<number, string | null>();
  const policy =
    shaping?.policy ??
    options.connectionPolicy ??
    globalConnectionPolicy({
      maxConnections: config.maxConnectionsPerMx,
      maxMessagesPerConnection: config.maxMessagesPerConnection,
      timeouts: { connectTimeoutMs: config.connectTimeoutMs, commandTimeoutMs: config.commandTimeoutMs, dataTimeoutMs: config.dataTimeoutMs },
    });
  const builder = createMessageBuilder();
  const contentCache = createContentCache(store, options.decorator ?? null);
  const rate = createRateMeter();
  const counters = { sent: 0, deferred: 0, failed: 0, released: 0 };

  let running = false;
  let stopping = false;
  let inHand = 0;
  let finalsSinceFinish = 0;
  let loopDone: Promise<void> = Promise.resolve();
  let wakeUp: (() => void) | null = null;
  // True while the loop sleeps because memory holds maxQueued/2 messages or more.
  let waitingForRoom = false;
  let drainWaiters: Array<() => void> = [];
  let handWaiters: Array<() => void> = [];
  // Claims are renewed every lease/3; if renewal fails for long, stop starting transactions on
  // claims that another node could soon take back.
  let leaseSafeUntil = 0;
  let lastRenewAt = 0;
  let lastRecoverAt = 0;

  const writer = createOutcomeWriter({
    write: (outcomes) => store.recordOutcomes(nodeId, outcomes),
    onWritten: (outcomes) => options.onOutcomes?.(outcomes),
    minIntervalMs: options.outcomeFlushIntervalMs ?? 10,
    onError: (error, retryInMs) => logger.error({ err: describeError(error), retryInMs }, 'writing delivery outcomes failed; retrying'),
  });

  const pool = createConnectionPool<MessageJob>({
    policy,
    resolver,
    heloName: config.heloName,
    opportunisticTls: config.opportunisticTls,
    throttle: shaping,
    classify,
    events: {
      onTransaction: (job, result, key) => finish(outcomeOfTransaction(job, result, key)),
      onHold: (jobs, retryInMs) => {
        const retryAt = clock.now() + retryInMs;
        for (const job of jobs) finish(released(job.log, retryAt, job.delivery.validUntil));
      },
      onUnreachable: (jobs, reply, key) => {
        if (key.localAddress) sources?.markUnreachable(key.localAddress, key.mxHost, clock.now());
        for (const job of jobs) {
          // Affinity: another address of the pool may reach this MX (weights re-normalize without this one).
          if (key.localAddress && rechooseSource(job, key.localAddress)) {
            enqueue(job);
            continue;
          }
          // RFC 5321 §5.1: try the next MX host before giving up on this attempt.
          if (job.hostIndex + 1 < job.hosts.length) {
            job.hostIndex++;
            enqueue(job);
          } else {
            finish(failureOutcome(job.log, job.delivery.validUntil, key.mxHost, reply));
          }
        }
      },
      onBuildError: (job, error) => {
        logger.error({ err: describeError(error), logId: job.log.id }, 'building a message failed');
        finish(released(job.log));
      },
    },
  });

  function finish(outcome: Outcome): void {
    writer.add(outcome);
    const now = outcome.at;
    if (outcome.kind === 'sent') {
      counters.sent++;
      rate.add(now);
    } else if (outcome.kind === 'deferred') counters.deferred++;
    else if (outcome.kind === 'failed') counters.failed++;
    else counters.released++;
    if (outcome.kind === 'sent' || outcome.kind === 'failed') finalsSinceFinish++;
    inHand--;
    if (waitingForRoom && inHand < config.maxQueued / 2) wake();
    if (inHand === 0) for (const waiter of handWaiters.splice(0)) waiter();
  }

  /**
   * Back to pending without using an attempt; `retryAt` (a rate, a suspension, a source problem) is
   * capped just past the delivery's validity, so a message held beyond it expires then instead of
   * keeping the delivery open (a breaker suspends a domain for hours).
   */
  function released(log: ClaimedLog, retryAt?: number, validUntil: number | null = null): Outcome {
    if (retryAt === undefined) return { kind: 'released', logId: log.id, mxHost: null, at: clock.now() };
    const capped = validUntil === null ? retryAt : Math.min(retryAt, validUntil + 1);
    return { kind: 'released', logId: log.id, mxHost: null, at: clock.now(), retryAt: capped };
  }

  function rechooseSource(job: MessageJob, failed: string): boolean {
    (job.failedSources ??= new Set()).add(failed);
    const choice = sources!.choose(job.delivery.affinity, job.log.domain, job.hosts[job.hostIndex]!.name, clock.now());
    if (choice.kind !== 'chosen' || job.failedSources.has(choice.source.address)) return false;
    job.source = choice.source;
    return true;
  }

  /** deliveries.last_error tells the operator why messages are held; written only when it changes. */
  function noteProblem(delivery: DeliveryContent, message: string | null): void {
    const text = message === null ? null : `${heldPrefix}${message}`;
    const previous = noted.has(delivery.id) ? noted.get(delivery.id) : delivery.lastError?.startsWith(heldPrefix) ? delivery.lastError : null;
    if (previous === text) return;
    noted.set(delivery.id, text);
    if (text) logger.warn({ deliveryId: delivery.id, reason: message }, 'messages held: cannot choose a source address');
    store.noteDeliveryProblem?.(delivery.id, text, clock.now()).catch((error: unknown) => logger.warn({ err: describeError(error) }, 'writing the delivery problem failed'));
  }

  function failureOutcome(log: ClaimedLog, validUntil: number | null, mxHost: string | null, reply: SmtpReply): Outcome {
    const at = clock.now();
    const verdict = classify(reply);
    // Hard failures stop at once; soft and ignored ones (an auto-reply during the SMTP dialogue) are retried.
    if (verdict.type === 'hard') return { kind: 'failed', logId: log.id, mxHost, at, reply, verdict };
    const decision = scheduleRetry(log.attempts + 1, at, validUntil, config.retryDelaysSeconds);
    if (decision.kind === 'retry') return { kind: 'deferred', logId: log.id, mxHost, at, retryAt: decision.retryAt, reply, verdict };
    return { kind: 'failed', logId: log.id, mxHost, at, reply, verdict: { type: verdict.type, reason: 'expired', category: verdict.category } };
  }

  function outcomeOfTransaction(job: MessageJob, result: TransactionResult, key: PoolKey): Outcome {
    if (result.kind === 'accepted') return { kind: 'sent', logId: job.log.id, mxHost: key.mxHost, at: clock.now(), reply: result.reply };
    return failureOutcome(job.log, job.delivery.validUntil, key.mxHost, result.reply);
  }

  function enqueue(job: MessageJob): void {
    if (stopping) {
      finish(released(job.log));
      return;
    }
    const host = job.hosts[job.hostIndex]!;
    const source = job.source;
    pool.enqueue(
      source
        ? { mxHost: host.name, host: host.route?.host ?? null, port: host.route?.port ?? 25, localAddress: source.address, heloName: source.heloName, publicId: source.publicId }
        : { mxHost: host.name, host: host.route?.host ?? null, port: host.route?.port ?? 25 },
      job,
    );
  }

  async function build(job: MessageJob): Promise<BuildResult> {
    const now = clock.now();
    if (stopping || now > leaseSafeUntil) {
      finish(released(job.log));
      return { kind: 'skip' };
    }
    const { content, compiled, decoration } = job.cached;
    let data: Record<string, unknown>;
    let rendered;
    let extraHeaders: string[] = [];
    try {
      data = personalizationOf(job.log.email, job.log.data);
      if (decoration) Object.assign(data, decoration.variables(job.log.id, now));
      rendered = compiled.render(data, job.log.email);
      if (decoration) {
        const decorated = decoration.decorate(job.log.id, rendered.html, now);
        rendered = { ...rendered, html: decorated.html };
        extraHeaders = decorated.headers;
      }
    } catch (error) {
      finish(failureOutcome(job.log, content.validUntil, null, localFailure('content_error', describeError(error))));
      return { kind: 'skip' };
    }
    const message = builder.build({
      logId: job.log.id,
      fromAddress: content.fromAddress,
      fromName: content.fromName,
      replyTo: content.replyTo,
      to: job.log.email,
      subject: rendered.subject,
      html: rendered.html,
      text: rendered.text,
      date: now,
      bounceDomain: config.bounceDomain,
    });
    // Tracking headers (List-Unsubscribe, RFC 8058) go in before DKIM signing, which covers them.
    if (extraHeaders.length > 0) message.headers.push(...extraHeaders);
    const keys = dkimKeys.get(content.fromAddress.slice(content.fromAddress.lastIndexOf('@') + 1).toLowerCase());
    const signatures = keys ? await signer.sign(message.headers, message.body, keys, now) : [];
    const headers = signatures.length > 0 ? [...signatures, ...message.headers] : message.headers;
    return { kind: 'message', envelopeFrom: message.envelopeFrom, recipient: message.recipient, data: serializeMessage(headers, message.body) };
  }

  async function dispatch(claimed: ClaimedLog[]): Promise<void> {
    const now = clock.now();
    const byDelivery = groupBy(claimed, (log) => log.deliveryId);
    await Promise.all(
      [...byDelivery].map(async ([deliveryId, logs]) => {
        let cached: CachedDelivery;
        try {
          cached = await contentCache.get(deliveryId, now);
        } catch (error) {
          logger.error({ err: describeError(error), deliveryId }, 'loading delivery content failed');
          for (const log of logs) finish(released(log));
          return;
        }
        // Paused or stopped since the claim: hand the logs back untouched.
        if (cached.kind === 'missing' || cached.content.state !== 'in_progress') {
          for (const log of logs) finish(released(log));
          return;
        }
        const delivery = cached.content;
        if (cached.kind === 'broken') {
          for (const log of logs) finish(failureOutcome(log, delivery.validUntil, null, localFailure('content_error', cached.error)));
          return;
        }
        const ready = cached;
        let problem: string | null = null;
        await Promise.all(
          [...groupBy(logs, (log) => log.domain)].map(async ([domain, domainLogs]) => {
            const live: ClaimedLog[] = [];
            for (const log of domainLogs) {
              if (isExpired(now, delivery.validUntil)) {
                finish({ kind: 'failed', logId: log.id, mxHost: null, at: now, reply: expiredReply(), verdict: { type: 'soft', reason: 'expired', category: 'expired' } });
              } else live.push(log);
            }
            if (live.length === 0) return;
            const check = shaping?.checkDomain(domain);
            if (check?.kind === 'suspended') {
              for (const log of live) finish(released(log, check.suspension.until, delivery.validUntil));
              return;
            }
            let resolution: MxResolution;
            try {
              resolution = await resolver.resolveDomain(domain);
            } catch (error) {
              resolution = { kind: 'failure', reply: localFailure('dns_temporary', describeError(error)) };
            }
            for (const log of live) {
              if (resolution.kind === 'failure') finish(failureOutcome(log, delivery.validUntil, null, resolution.reply));
              else {
                const job: MessageJob = { logId: log.id, domain, log, delivery, cached: ready, hosts: resolution.hosts, hostIndex: 0, build: () => build(job) };
                if (sources) {
                  const choice = sources.choose(delivery.affinity, domain, resolution.hosts[0]!.name, now);
                  if (choice.kind !== 'chosen') {
                    problem ??= choice.message;
                    finish(released(log, now + sourceProblemRetryMs, delivery.validUntil));
                    continue;
                  }
                  job.source = choice.source;
                }
                enqueue(job);
              }
            }
          }),
        );
        if (sources) noteProblem(delivery, problem);
      }),
    );
  }

  function wake(): void {
    const resolve = wakeUp;
    wakeUp = null;
    resolve?.();
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        wakeUp = null;
        resolve();
      }, Math.max(0, ms));
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async function maintain(now: number): Promise<void> {
    if (now - lastRenewAt >= leaseMs / 3 || now < lastRenewAt) {
      await store.renewClaims(nodeId, now, leaseMs);
      lastRenewAt = now;
      leaseSafeUntil = now + leaseMs / 2;
    }
    if (now - lastRecoverAt >= Math.min(30_000, leaseMs / 2) || now < lastRecoverAt) {
      const recovered = await store.recoverExpiredClaims(now);
      if (recovered > 0) logger.warn({ recovered }, 'took back expired claims of other nodes');
      lastRecoverAt = now;
    }
  }

  async function finishDeliveries(now: number): Promise<void> {
    if (finalsSinceFinish === 0) return;
    finalsSinceFinish = 0;
    await writer.flush();
    const finished = await store.finishCompletedDeliveries(now);
    for (const deliveryId of finished) logger.info({ deliveryId }, 'delivery finished');
  }

  async function loop(): Promise<void> {
    let lastFinishAt = 0;
    while (running) {
      try {
        const now = clock.now();
        await maintain(now);
        if (inHand >= config.maxQueued / 2) {
          waitingForRoom = true;
          await sleep(config.pollIntervalMs);
          waitingForRoom = false;
          continue;
        }
        const claimed = await store.claimDue(nodeId, now, Math.min(config.claimBatchSize, config.maxQueued - inHand), leaseMs);
        if (!running) {
          inHand += claimed.length;
          for (const log of claimed) finish(released(log));
          break;
        }
        if (claimed.length > 0) {
          inHand += claimed.length;
          void dispatch(claimed).catch((error: unknown) => logger.error({ err: describeError(error) }, 'dispatching claimed messages failed'));
          if (now - lastFinishAt >= 1_000) {
            lastFinishAt = now;
            await finishDeliveries(now);
          }
          continue;
        }
        if (inHand === 0) {
          await finishDeliveries(now);
          await writer.flush();
          if (inHand === 0) for (const waiter of drainWaiters.splice(0)) waiter();
        }
        const next = await store.nextDueAt();
        const wait = next === null ? config.pollIntervalMs : Math.min(config.pollIntervalMs, Math.max(next - now, 20));
        await sleep(wait);
      } catch (error) {
        logger.error({ err: describeError(error) }, 'MTA claim loop failed; retrying');
        await sleep(config.pollIntervalMs);
      }
    }
  }

  return {
    async start() {
      if (running) return;
      const now = clock.now();
      // Anything still 'sending' under our id is from a previous life of this node (crash, kill -9).
      const taken = await store.releaseClaims(nodeId, now);
      if (taken > 0) logger.warn({ released: taken }, 'took back claims left by a previous run of this node');
      if (useWorkers) signer = createWorkerSigner(allKeys, config.dkimWorkers);
      running = true;
      stopping = false;
      lastRenewAt = now;
      leaseSafeUntil = now + leaseMs / 2;
      loopDone = loop();
    },
    async stop() {
      if (!running && !stopping) return;
      running = false;
      stopping = true;
      wake();
      await loopDone;
      const notStarted = await pool.stop();
      for (const job of notStarted) finish(released(job.log));
      if (inHand > 0) await new Promise<void>((resolve) => handWaiters.push(resolve));
      await writer.flush();
      await store.releaseClaims(nodeId, clock.now());
      finalsSinceFinish = Math.max(finalsSinceFinish, 1);
      await finishDeliveries(clock.now());
      await signer.close();
      if (useWorkers) signer = mainThreadSigner;
      for (const waiter of drainWaiters.splice(0)) waiter();
    },
    stats() {
      const poolStats = pool.stats();
      return {
        ...counters,
        inFlight: poolStats.inFlight,
        queued: Math.max(0, inHand - poolStats.inFlight),
        connectionsOpen: poolStats.connectionsOpen,
        msgsPerSec: rate.rate(clock.now()),
      };
    },
    wake,
    drain() {
      return new Promise<void>((resolve) => {
        drainWaiters.push(resolve);
        wake();
      });
    },
  };
}

function groupBy<T, K>(items: readonly T[], keyOf: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>();
  for (const item of items) {
    const key = keyOf(item);
    const group = groups.get(key);
    if (group) group.push(item);
    else groups.set(key, [item]);
  }
  return groups;
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
