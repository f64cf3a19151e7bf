import { systemClock, type Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/database.ts';
import type { MidsourcingConfig } from './config.ts';
import {
  getOutbound,
  noteLocalState,
  recordStateAck,
  recordStateAttempt,
  unforwardedStates,
} from './outbound-store.ts';
import { withRetries, type PeerClient, type RetryPolicy } from './peer-client.ts';
import { peerClients, retryPolicyOf } from './sync.ts';
import { forwardedStates, type ForwardedState, type StateChangeOutcome } from './wire.ts';

// Marketing side: an operator's pause, resume or stop of a pushed delivery is forwarded to the
// execution instance that holds its parts. The local delivery state is the source of truth: each
// forward first records it as the latest numbered target if it differs from the last one (so a
// crash between the local change and the forward loses nothing: the next pass finds the difference),
// then sends that version until the execution side acknowledges it. Retries and late copies are
// harmless: the execution side applies each version once and ignores older ones.

export type ForwardResult =
  | { kind: 'not-pushed'; deliveryId: number }
  /** Nothing to forward: the execution side acknowledged the latest state (or none was ever changed). */
  | {
      kind: 'in-sync';
      deliveryId: number;
      peer: string;
      target: string | null;
      version: number;
      remoteState: string | null;
    }
  /** Not sent yet; `reason` says when it will be. */
  | { kind: 'queued'; deliveryId: number; peer: string; target: string | null; version: number; reason: string }
  | {
      kind: 'forwarded';
      deliveryId: number;
      peer: string;
      target: string;
      version: number;
      outcome: StateChangeOutcome;
      remoteState: string;
      attempts: number;
    }
  | {
      kind: 'failed';
      deliveryId: number;
      peer: string;
      target: string;
      version: number;
      retryable: boolean;
      error: string;
      attempts: number;
    };

/** Pure: the target forwarded for a local delivery state (pause, resume and stop lead to these). */
export function forwardedTarget(localState: string): ForwardedState | undefined {
  return (forwardedStates as readonly string[]).includes(localState) ? (localState as ForwardedState) : undefined;
}

export interface ForwardOptions {
  retry: RetryPolicy;
  clock?: Clock;
}

/** Forwards the delivery's current state to its execution instance if it was not acknowledged yet. */
export async function forwardState(
  store: Store,
  client: PeerClient,
  deliveryId: number,
  options: ForwardOptions,
): Promise<ForwardResult> {
  const clock = options.clock ?? systemClock;
  let result: ForwardResult = { kind: 'not-pushed', deliveryId };
  // An operator acting again while a version is in flight records a newer one: send it too.
  for (let round = 0; round < 3; round++) {
    const outbound = await noteLocalState(store, deliveryId, clock.now());
    if (!outbound) return { kind: 'not-pushed', deliveryId };
    const version = Number(outbound.state_version);
    const common = { deliveryId, peer: outbound.peer, version };
    if (version === 0 || Number(outbound.state_acked_version) >= version) {
      return result.kind === 'forwarded'
        ? result
        : {
            kind: 'in-sync',
            ...common,
            target: outbound.state_target,
            remoteState: outbound.state_remote ?? outbound.remote_state,
          };
    }
    const target = outbound.state_target as ForwardedState;
    if (outbound.remote_id === null) {
      return {
        kind: 'queued',
        ...common,
        target,
        reason: 'the push has not reached the execution instance yet; it forwards the state before finalizing',
      };
    }
    let attempts = 0;
    const outcome = await withRetries(
      options.retry,
      () => client.changeState(outbound.remote_id!, { state: target, version }),
      async (attempt) => {
        attempts++;
        await recordStateAttempt(
          store,
          deliveryId,
          version,
          attempt.ok ? null : `${attempt.code}: ${attempt.message}`,
          clock.now(),
        );
      },
    );
    if (!outcome.ok) {
      return {
        kind: 'failed',
        ...common,
        target,
        retryable: outcome.retryable,
        error: `${outcome.code}: ${outcome.message}`,
        attempts,
      };
    }
    await recordStateAck(
      store,
      deliveryId,
      version,
      { outcome: outcome.value.outcome, remoteState: outcome.value.state },
      clock.now(),
    );
    result = {
      kind: 'forwarded',
      ...common,
      target,
      outcome: outcome.value.outcome,
      remoteState: outcome.value.state,
      attempts,
    };
  }
  return result;
}

/**
 * After an operator's action (`herald delivery pause|resume|stop`): forwards at once with at most
 * `maxAttempts` tries, so the command answers in bounded time; what is not acknowledged stays queued
 * for the mid-sync-counters workflow (and `herald mid sync`).
 */
export async function forwardOperatorAction(
  store: Store,
  config: MidsourcingConfig,
  deliveryId: number,
  options: { clock?: Clock; maxAttempts?: number } = {},
): Promise<ForwardResult> {
  const outbound = await getOutbound(store, deliveryId);
  if (!outbound) return { kind: 'not-pushed', deliveryId };
  if (config.mode !== 'marketing') {
    return {
      kind: 'queued',
      deliveryId,
      peer: outbound.peer,
      target: null,
      version: Number(outbound.state_version),
      reason: `midsourcing.mode is "${config.mode}" here; it is forwarded once this instance runs in marketing mode`,
    };
  }
  const clients = peerClients(config, options.clock);
  try {
    const retry = { ...retryPolicyOf(config), maxAttempts: Math.min(config.maxAttempts, options.maxAttempts ?? 3) };
    return await forwardState(store, clients.get(outbound.peer), deliveryId, { retry, clock: options.clock });
  } finally {
    clients.close();
  }
}

/** One pass over every pushed delivery whose state the execution side has not acknowledged. */
export async function forwardPendingStates(
  store: Store,
  config: MidsourcingConfig,
  clock?: Clock,
  logger?: Logger,
): Promise<ForwardResult[]> {
  const clients = peerClients(config, clock, logger);
  const results: ForwardResult[] = [];
  try {
    for (const outbound of await unforwardedStates(store)) {
      try {
        results.push(
          await forwardState(store, clients.get(outbound.peer), outbound.delivery_id, {
            retry: retryPolicyOf(config),
            clock,
          }),
        );
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        results.push({
          kind: 'failed',
          deliveryId: outbound.delivery_id,
          peer: outbound.peer,
          target: outbound.state_target ?? 'in_progress',
          version: Number(outbound.state_version),
          retryable: true,
          error: message,
          attempts: 0,
        });
      }
    }
  } finally {
    clients.close();
  }
  return results;
}

/** One line for the operator (CLI, workflow log). */
export function describeForward(result: ForwardResult): string {
  switch (result.kind) {
    case 'not-pushed':
      return `delivery ${result.deliveryId} was not pushed to an execution instance`;
    case 'in-sync':
      return `delivery ${result.deliveryId}: ${result.peer} already has this state${result.remoteState ? ` (remote ${result.remoteState})` : ''}`;
    case 'queued':
      return `delivery ${result.deliveryId}: forwarding to ${result.peer} queued: ${result.reason}`;
    case 'forwarded':
      return `delivery ${result.deliveryId}: ${result.target} forwarded to ${result.peer} (version ${result.version}, ${result.outcome}${result.attempts > 1 ? ` after ${result.attempts} attempts` : ''}); remote ${result.remoteState}`;
    case 'failed':
      return `delivery ${result.deliveryId}: forwarding ${result.target} to ${result.peer} failed after ${result.attempts} attempt(s): ${result.error}${
        result.retryable ? '; queued: the mid-sync-counters workflow retries it (herald mid sync does it now)' : ''
      }`;
  }
}
