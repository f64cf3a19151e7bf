import { AppError } from '../common/errors.ts';
import { getDelivery } from '../delivery/delivery-store.ts';
import { pauseDelivery, resumeDelivery, stopDelivery, transitionDelivery } from '../delivery/lifecycle.ts';
import { countLogs } from '../delivery/preparation-store.ts';
import { canTransition, finalDeliveryStates } from '../delivery/state-machine.ts';
import { inTransaction, type Store } from '../store/database.ts';
import {
  countInboundParts,
  findInbound,
  inboundPeer,
  insertInboundStateChange,
  lockInbound,
  markInboundFinalized,
  recordInboundStateVersion,
  settleHeldStateChanges,
  type InboundDelivery,
} from './inbound-store.ts';
import type { DeliveryState } from '../store/tables.ts';
import type { ForwardedState, StateChangeRequest, StateChangeResponse } from './wire.ts';

// Execution side of a forwarded pause, resume or stop: the received delivery goes through the same
// state machine and lifecycle actions as a local one (a stop cancels its pending logs, which the
// change log then reports back). Each version is applied once, in one transaction with its record.

export type StateDecision =
  | { kind: 'apply' }
  | { kind: 'already' }
  | { kind: 'held' }
  | { kind: 'final' }
  | { kind: 'invalid'; message: string };

/** Pure: what a target state means for a received delivery in state `current`. */
export function decideStateChange(current: DeliveryState, finalized: boolean, target: ForwardedState): StateDecision {
  if (finalDeliveryStates.includes(current) || current === 'preparation_failed') return { kind: 'final' };
  if (current === target) return { kind: 'already' };
  // Parts still arriving: nothing sends yet; finalize applies the latest target.
  if (!finalized || current === 'preparing' || current === 'prepared') return { kind: 'held' };
  if (canTransition(current, target)) return { kind: 'apply' };
  return { kind: 'invalid', message: `delivery is ${current}; it cannot become ${target}` };
}

function transitionTo(store: Store, deliveryId: number, target: ForwardedState, now: number) {
  switch (target) {
    case 'paused':
      return pauseDelivery(store, deliveryId, now);
    case 'in_progress':
      return resumeDelivery(store, deliveryId, now);
    case 'stopped':
      return stopDelivery(store, deliveryId, now);
  }
}

class RejectedTarget extends Error {}

export type StateChangeResult = { ok: true; value: StateChangeResponse } | { ok: false; message: string };

export async function applyStateChange(
  store: Store,
  peer: string,
  deliveryId: number,
  request: StateChangeRequest,
  now: number,
): Promise<StateChangeResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await inTransaction(store, async (trx): Promise<StateChangeResponse> => {
        await lockInbound(trx, deliveryId);
        const inbound = await mustFind(trx, peer, deliveryId);
        if (
          inbound.stateVersion >= request.version ||
          !(await recordInboundStateVersion(trx, deliveryId, request.version, request.state))
        ) {
          return { state: inbound.state, version: inbound.stateVersion, outcome: 'duplicate' };
        }
        const from = inbound.state as DeliveryState;
        const decision = decideStateChange(from, inbound.finalizedAt !== null, request.state);
        if (decision.kind === 'invalid') throw new RejectedTarget(decision.message);
        if (decision.kind === 'apply') await transitionTo(trx, deliveryId, request.state, now);
        await insertInboundStateChange(trx, {
          delivery_id: deliveryId,
          version: request.version,
          target: request.state,
          from_state: from,
          outcome: decision.kind === 'apply' ? 'applied' : decision.kind,
          received_at: now,
          applied_at: decision.kind === 'apply' ? now : null,
        });
        const after = await mustFind(trx, peer, deliveryId);
        return {
          state: after.state,
          version: request.version,
          outcome: decision.kind === 'apply' ? 'applied' : decision.kind,
        };
      });
      return { ok: true, value };
    } catch (error) {
      if (error instanceof RejectedTarget) return { ok: false, message: `delivery ${deliveryId}: ${error.message}` };
      // The MTA finished the delivery (or another node changed it) between our read and our update: decide again.
      if (error instanceof AppError && error.code === 'INVALID_STATE' && attempt < 3) continue;
      throw error;
    }
  }
}

/** preparing → prepared → in_progress, validity counted from now. Idempotent. */
export async function finalizeInbound(store: Store, deliveryId: number, now: number): Promise<InboundDelivery> {
  const peer = await inboundPeer(store, deliveryId);
  const delivery = await getDelivery(store, deliveryId);
  if (delivery.state === 'preparing') {
    const counts = await countInboundParts(store, deliveryId);
    const duplicates = counts.recipients - (await countLogs(store, deliveryId));
    await transitionDelivery(store, deliveryId, 'prepared', now, {
      prepared_at: now,
      excluded_count: duplicates,
      exclusions: JSON.stringify({ duplicate: duplicates }),
    });
  }
  const current = await getDelivery(store, deliveryId);
  if (current.state === 'prepared') {
    await transitionDelivery(
      store,
      deliveryId,
      'in_progress',
      now,
      { started_at: now, valid_until: now + Number(delivery.validity_seconds) * 1000 },
      ['prepared'],
    );
  }
  await markInboundFinalized(store, deliveryId, now);
  return mustFind(store, peer, deliveryId);
}

/** Inside finalize's transaction, once the delivery is in progress: applies a change received before. */
export async function applyHeldStateChange(
  store: Store,
  inbound: InboundDelivery,
  now: number,
): Promise<InboundDelivery> {
  if (inbound.stateVersion === 0 || inbound.stateTarget === null) return inbound;
  const target = inbound.stateTarget as ForwardedState;
  const decision = decideStateChange(inbound.state as DeliveryState, true, target);
  if (decision.kind === 'apply') await transitionTo(store, inbound.deliveryId, target, now);
  const outcome =
    decision.kind === 'apply'
      ? 'applied'
      : decision.kind === 'already' || decision.kind === 'final'
        ? decision.kind
        : undefined;
  if (outcome) await settleHeldStateChanges(store, inbound.deliveryId, inbound.stateVersion, outcome, now);
  return mustFind(store, inbound.peer, inbound.deliveryId);
}

async function mustFind(store: Store, peer: string, deliveryId: number): Promise<InboundDelivery> {
  const inbound = await findInbound(store, peer, deliveryId);
  if (!inbound) throw new AppError('INTERNAL', `received delivery ${deliveryId} vanished`);
  return inbound;
}
