import { systemClock, type Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { getDelivery } from '../delivery/delivery-store.ts';
import { inTransaction, type Store } from '../store/database.ts';
import type { DeliveryRow, DeliveryState } from '../store/tables.ts';
import {
  getOutbound,
  hasDeliveryLogs,
  insertOutbound,
  listParts,
  markDeliveryPushed,
  planParts,
  readPartLogs,
  updateOutbound,
  updatePart,
  type OutboundPartRow,
} from './outbound-store.ts';
import { encodePart } from './part-codec.ts';
import { withRetries, type PeerClient, type RetryPolicy } from './peer-client.ts';
import type { CallOutcome } from './retry.ts';
import { forwardState } from './state-forward.ts';
import { submitRequestSchema, type SubmitRequest } from './wire.ts';

// Marketing side: hands a prepared delivery to an execution peer. Submit (idempotent), plan parts
// by delivery-log id ranges, push up to `inFlight` parts at a time with retries, then finalize.
// Every attempt is recorded on its part row, so a crash or a give-up resumes with what is missing
// and `herald mid status` shows build time, append latency, timeouts and the last error per part.

export interface PushOptions {
  store: Store;
  client: PeerClient;
  deliveryId: number;
  partSize: number;
  inFlight: number;
  retry: RetryPolicy;
  clock?: Clock;
  logger?: Logger;
  onPartAcked?(progress: { part: number; partsAcked: number; partsTotal: number; recipientsAcked: number }): void;
  /** Each append attempt's latency and outcome (the metrics registry). */
  onPartAttempt?(seconds: number, outcome: 'ok' | 'timeout' | 'error'): void;
}

export interface PushResult {
  deliveryId: number;
  peer: string;
  remoteId: number;
  parts: number;
  recipients: number;
  /** Parts the execution side already had (a resumed or retried push). */
  duplicates: number;
  attempts: number;
  timeouts: number;
  elapsedMs: number;
  recipientsPerSec: number;
  remoteState: string;
}

/** What to do after a push gave up: an error that will recur (a part too large) is fixed over there first. */
function afterGivingUp(outcome: Extract<CallOutcome<unknown>, { ok: false }>): string {
  if (!outcome.retryable) return '';
  return outcome.code === 'BODY_TOO_LARGE'
    ? ' (gave up after retries; pushing again resumes once that is done)'
    : ' (gave up after retries; push again to resume)';
}

function failure(outcome: Extract<CallOutcome<unknown>, { ok: false }>, what: string): AppError {
  const code = outcome.retryable ? 'MID_REMOTE_UNAVAILABLE' : 'MID_REMOTE_REJECTED';
  return new AppError(code, `${what}: ${outcome.code}: ${outcome.message}${afterGivingUp(outcome)}`, {
    details: { remoteCode: outcome.code, retryable: outcome.retryable },
  });
}

/** The states a delivery can be handed to an execution peer from. */
const pushableStates: readonly DeliveryState[] = ['prepared', 'start_pending'];

/** What the execution side is asked to create for the delivery. */
function submitRequestOf(delivery: DeliveryRow, parts: number, recipients: number): SubmitRequest {
  return {
    marketingDeliveryId: Number(delivery.id),
    name: delivery.name,
    fromAddress: delivery.from_address,
    fromName: delivery.from_name,
    replyTo: delivery.reply_to,
    subject: delivery.subject_template,
    html: delivery.html_template,
    text: delivery.text_template,
    validitySeconds: Number(delivery.validity_seconds),
    affinity: delivery.affinity,
    parts,
    recipients,
  };
}

/**
 * Refuses, before a first push moves anything, a delivery with nothing to push, one scheduled for
 * later (the execution side starts sending at finalize: the schedule would be ignored), and one the
 * execution side would refuse to create (the wire protocol bounds what the marketing side does not,
 * e.g. an HTML body of inline images): refused after the delivery went in progress on the peer, it
 * would stay there, pushed nowhere, with a push the mid-sync-counters workflow retries forever.
 * Other states are beginOutbound's to judge (a resumed push, or not pushable at all).
 */
async function checkPushable(store: Store, deliveryId: number, now: number): Promise<void> {
  const delivery = await getDelivery(store, deliveryId);
  if (!pushableStates.includes(delivery.state)) return;
  if (!(await hasDeliveryLogs(store, deliveryId)))
    throw new AppError('DELIVERY_NO_TARGET', `delivery ${deliveryId} has no delivery logs to push`);
  const scheduledAt = delivery.scheduled_at === null ? null : Number(delivery.scheduled_at);
  if (scheduledAt !== null && scheduledAt > now)
    throw new AppError(
      'INVALID_STATE',
      `delivery ${deliveryId} is scheduled for ${new Date(scheduledAt).toISOString()}: an execution instance starts sending a delivery as soon as its push is finalized, so push it at or after that time`,
      { details: { deliveryId, scheduledAt } },
    );
  const checked = submitRequestSchema.safeParse(submitRequestOf(delivery, 1, 1));
  if (checked.success) return;
  const issues = checked.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
  throw new AppError('INPUT_INVALID', `delivery ${deliveryId} cannot be pushed to an execution instance: ${issues}`);
}

/**
 * prepared (or start_pending) → in_progress with execution_peer set (markDeliveryPushed), and the
 * outbound row. Resuming a push of the same delivery to the same peer is allowed, also while paused
 * (the pause is forwarded before finalize, so the execution side never starts it); a stopped delivery
 * is not pushed any more.
 */
async function beginOutbound(store: Store, deliveryId: number, peer: string, now: number): Promise<DeliveryRow> {
  // One transaction: a crash between the two left the delivery in_progress at the peer with no
  // outbound row, which neither the workflow (it resumes outbound rows) nor the doctor would see.
  return inTransaction(store, async (trx) => {
    const moved = await markDeliveryPushed(trx, deliveryId, { peer, from: pushableStates, now });
    const delivery = await getDelivery(trx, deliveryId);
    const executionPeer = delivery.execution_peer;
    const resumed = (delivery.state === 'in_progress' || delivery.state === 'paused') && executionPeer === peer;
    if (!moved && !resumed) {
      throw new AppError(
        'INVALID_STATE',
        `delivery ${deliveryId} is ${delivery.state}${executionPeer ? ` (pushed to ${executionPeer})` : ''}; only a prepared delivery can be pushed`,
      );
    }
    await insertOutbound(trx, deliveryId, peer, now);
    return delivery;
  });
}

export async function pushDelivery(options: PushOptions): Promise<PushResult> {
  const { store, client, deliveryId } = options;
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger;
  const started = clock.now();
  await checkPushable(store, deliveryId, started);
  const delivery = await beginOutbound(store, deliveryId, client.peerName, started);
  const recordError = (message: string) =>
    updateOutbound(store, deliveryId, { last_error: message.slice(0, 2_000), last_error_at: clock.now() }, clock.now());
  // Every attempt dates the outbound row: the mid-sync-counters workflow resumes pushes idle for 5
  // minutes, and must not start a second push of the parts this one is still retrying.
  const alive = () => updateOutbound(store, deliveryId, {}, clock.now());

  const plan = await planParts(store, deliveryId, options.partSize, started);
  const recipients = plan.reduce((sum, part) => sum + part.recipients, 0);
  // The error of a push before (given up, "push again to resume") is over: `herald mid status` shows
  // this push's own failures from now on, not a give-up while it is under way.
  await updateOutbound(
    store,
    deliveryId,
    { parts_total: plan.length, recipients, last_error: null, last_error_at: null },
    started,
  );

  const submitted = await withRetries(
    options.retry,
    () => client.submit(submitRequestOf(delivery, plan.length, recipients)),
    alive,
  );
  if (!submitted.ok) {
    const error = failure(submitted, `submitting delivery ${deliveryId} to ${client.peerName}`);
    await recordError(error.message);
    throw error;
  }
  const remoteId = submitted.value.remoteId;
  await updateOutbound(store, deliveryId, { remote_id: remoteId }, clock.now());

  const outbound = await getOutbound(store, deliveryId);
  let attempts = 0;
  let timeouts = 0;
  let duplicates = 0;
  if (outbound?.state !== 'finalized') {
    const queue = plan.filter((part) => part.state !== 'acked');
    let acked = plan.length - queue.length;
    let recipientsAcked = plan.filter((part) => part.state === 'acked').reduce((sum, part) => sum + part.recipients, 0);
    let fatal: AppError | undefined;

    const pushPart = async (part: OutboundPartRow): Promise<void> => {
      const buildStarted = performance.now();
      const logs = await readPartLogs(store, deliveryId, part.first_log_id, part.last_log_id);
      const encoded = await encodePart(
        part.part_number,
        logs.map((log) => ({ id: Number(log.id), email: log.email, domain: log.domain, data: log.data })),
      );
      const buildMs = Math.round(performance.now() - buildStarted);
      let partAttempts = part.attempts;
      let partTimeouts = part.timeouts;
      const outcome = await withRetries(
        options.retry,
        () => client.appendPart(remoteId, part.part_number, encoded.key, encoded.body),
        async (result) => {
          attempts++;
          partAttempts++;
          options.onPartAttempt?.(result.latencyMs / 1000, result.ok ? 'ok' : result.timeout ? 'timeout' : 'error');
          if (!result.ok && result.timeout) {
            timeouts++;
            partTimeouts++;
          }
          await alive();
          await updatePart(store, deliveryId, part.part_number, {
            attempts: partAttempts,
            timeouts: partTimeouts,
            build_ms: buildMs,
            latency_ms: result.latencyMs,
            part_key: encoded.key,
            bytes: encoded.body.length,
            last_error: result.ok ? part.last_error : `${result.code}: ${result.message}`.slice(0, 1_000),
            ...(result.ok ? { state: 'acked' as const, acked_at: clock.now() } : {}),
            updated_at: clock.now(),
          });
          if (!result.ok)
            logger.warn(
              {
                deliveryId,
                part: part.part_number,
                code: result.code,
                retryable: result.retryable,
                error: result.message,
              },
              'pushing a part failed',
            );
        },
        () => fatal !== undefined,
      );
      if (!outcome.ok) {
        fatal ??= failure(outcome, `part ${part.part_number} of delivery ${deliveryId}`);
        return;
      }
      if (outcome.value.duplicate) duplicates++;
      acked++;
      recipientsAcked += part.recipients;
      options.onPartAcked?.({ part: part.part_number, partsAcked: acked, partsTotal: plan.length, recipientsAcked });
    };

    const worker = async () => {
      for (let part = queue.shift(); part !== undefined && fatal === undefined; part = queue.shift())
        await pushPart(part);
    };
    await Promise.all(Array.from({ length: Math.max(1, options.inFlight) }, worker));
    if (fatal) {
      await recordError(fatal.message);
      throw fatal;
    }
  }

  // A pause or stop made while the parts were on their way is recorded over there before finalize,
  // which applies it in the same transaction: the execution side never starts sending it.
  const forwarded = await forwardState(store, client, deliveryId, { retry: options.retry, clock });
  if (forwarded.kind === 'failed') {
    const error = new AppError(
      forwarded.retryable ? 'MID_REMOTE_UNAVAILABLE' : 'MID_REMOTE_REJECTED',
      `forwarding the state of delivery ${deliveryId} to ${client.peerName} before finalize: ${forwarded.error}`,
    );
    await recordError(error.message);
    throw error;
  }

  const finalized = await withRetries(
    options.retry,
    () => client.finalize(remoteId, { parts: plan.length, recipients }),
    alive,
  );
  if (!finalized.ok) {
    const error = failure(finalized, `finalizing delivery ${deliveryId} on ${client.peerName}`);
    await recordError(error.message);
    throw error;
  }
  const done = clock.now();
  await updateOutbound(
    store,
    deliveryId,
    // The errors of earlier attempts are over: `herald mid status` and the doctor show a healthy push.
    {
      state: 'finalized',
      finalized_at: outbound?.finalized_at ?? done,
      remote_state: finalized.value.state,
      last_error: null,
      last_error_at: null,
    },
    done,
  );
  const parts = await listParts(store, deliveryId);
  const elapsedMs = Math.max(1, done - started);
  return {
    deliveryId,
    peer: client.peerName,
    remoteId,
    parts: parts.length,
    recipients,
    duplicates,
    attempts,
    timeouts,
    elapsedMs,
    recipientsPerSec: Math.round((recipients / elapsedMs) * 1000),
    remoteState: finalized.value.state,
  };
}
