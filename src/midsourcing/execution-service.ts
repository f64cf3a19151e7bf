import { finalDeliveryStates } from '../delivery/state-machine.ts';
import { inTransaction, type Store } from '../store/database.ts';
import { countDeliveryLogs } from '../delivery/delivery-store.ts';
import {
  appendInboundPart,
  countInboundParts,
  createInbound,
  findInbound,
  findInboundBySource,
  findInboundPartKey,
  hasChangesAfter,
  hasUnpublishedChanges,
  lockInbound,
  publishLogChanges,
  readLogChanges,
  recordReadCursor,
  type InboundDelivery,
} from './inbound-store.ts';
import type { DeliveryState } from '../store/tables.ts';
import { applyHeldStateChange, applyStateChange, finalizeInbound } from './execution-state.ts';
import {
  finalizeRequestSchema,
  midError,
  stateChangeRequestSchema,
  submitRequestSchema,
  type CountersResponse,
  type FinalizeResponse,
  type LogsResponse,
  type MidErrorBody,
  type PartLine,
  type PartResponse,
  type StateChangeResponse,
  type SubmitResponse,
} from './wire.ts';

// What the execution instance does for each request of the protocol, once the request is
// authenticated and its body decoded. Outcomes are values; the HTTP layer only maps them.

export type Served<T> = { ok: true; value: T } | { ok: false; error: MidErrorBody };

const ok = <T>(value: T): Served<T> => ({ ok: true, value });
const fail = (...args: Parameters<typeof midError>): Served<never> => ({ ok: false, error: midError(...args) });

function invalid(issues: { path: (string | number)[]; message: string }[], what: string): Served<never> {
  return fail(
    'INVALID_BODY',
    `${what}: ${issues.map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`).join('; ')}`,
  );
}

export function createExecutionService(store: Store) {
  async function owned(peer: string, remoteId: number): Promise<InboundDelivery | Served<never>> {
    const inbound = await findInbound(store, peer, remoteId);
    return inbound ?? fail('NOT_FOUND', `delivery ${remoteId} was not received from ${peer}`);
  }

  return {
    async submit(peer: string, body: unknown, now: number): Promise<Served<SubmitResponse>> {
      const parsed = submitRequestSchema.safeParse(body);
      if (!parsed.success) return invalid(parsed.error.issues, 'submit');
      const inbound =
        (await findInboundBySource(store, peer, parsed.data.marketingDeliveryId)) ??
        (await createInbound(store, peer, parsed.data, now));
      const counts = await countInboundParts(store, inbound.deliveryId);
      return ok({ remoteId: inbound.deliveryId, state: inbound.state, partsReceived: counts.parts });
    },

    async appendPart(
      peer: string,
      remoteId: number,
      part: number,
      key: string,
      lines: PartLine[],
      now: number,
    ): Promise<Served<PartResponse>> {
      const inbound = await owned(peer, remoteId);
      if ('ok' in inbound) return inbound;
      if (part < 1 || part > inbound.partsExpected)
        return fail('INVALID_BODY', `part ${part} is outside 1..${inbound.partsExpected}`);
      const logs = lines.map((line) => ({
        sourceLogId: line.id,
        email: line.email,
        domain: line.domain,
        data: line.data,
      }));
      if (inbound.state !== 'preparing') {
        // Finalized already: a late retry of a part that made it is a duplicate; anything else is too late.
        if ((await findInboundPartKey(store, remoteId, part)) === key)
          return ok({ part, recipients: lines.length, duplicate: true });
        return fail(
          'INVALID_STATE',
          `delivery ${remoteId} is ${inbound.state}; parts can only be appended before finalize`,
        );
      }
      const result = await appendInboundPart(store, remoteId, part, key, logs, now);
      if (result.kind === 'conflict')
        return fail(
          'PART_CONFLICT',
          `part ${part} was already received with other content (key ${result.existingKey})`,
        );
      return ok({ part, recipients: lines.length, duplicate: result.kind === 'duplicate' });
    },

    async finalize(peer: string, remoteId: number, body: unknown, now: number): Promise<Served<FinalizeResponse>> {
      const parsed = finalizeRequestSchema.safeParse(body);
      if (!parsed.success) return invalid(parsed.error.issues, 'finalize');
      const inbound = await owned(peer, remoteId);
      if ('ok' in inbound) return inbound;
      if (inbound.finalizedAt === null) {
        const counts = await countInboundParts(store, remoteId);
        if (counts.parts !== parsed.data.parts || counts.recipients !== parsed.data.recipients) {
          return fail(
            'PARTS_MISSING',
            `received ${counts.parts} parts (${counts.recipients} recipients), finalize announces ${parsed.data.parts} (${parsed.data.recipients})`,
          );
        }
      }
      // One transaction with any pause or stop received before: the delivery is never seen in progress
      // (claimable by the MTA) when the marketing side had already paused or stopped it.
      const finalized = await inTransaction(store, async (trx) => {
        await lockInbound(trx, remoteId);
        const firstFinalize = (await findInbound(trx, peer, remoteId))?.finalizedAt === null;
        const result = await finalizeInbound(trx, remoteId, now);
        return firstFinalize ? applyHeldStateChange(trx, result, now) : result;
      });
      return ok({ state: finalized.state, validUntil: finalized.validUntil });
    },

    async logs(
      peer: string,
      remoteId: number,
      cursor: number,
      limit: number,
      now: number,
    ): Promise<Served<LogsResponse>> {
      const inbound = await owned(peer, remoteId);
      if ('ok' in inbound) return inbound;
      // The peer applied every change up to the cursor it sends: the cleanup workflow may purge them.
      await recordReadCursor(store, remoteId, cursor, now);
      // The state is read before the changes: if it says finished, every outcome (and its change
      // row, written in the same transaction) committed before this read, so the page includes it.
      const state = inbound.state;
      await publishLogChanges(store, now);
      const page = await readLogChanges(store, remoteId, cursor, limit);
      const caughtUp =
        !(await hasChangesAfter(store, remoteId, page.nextCursor)) && !(await hasUnpublishedChanges(store, remoteId));
      return ok({ changes: page.changes, nextCursor: page.nextCursor, caughtUp, state });
    },

    async changeState(
      peer: string,
      remoteId: number,
      body: unknown,
      now: number,
    ): Promise<Served<StateChangeResponse>> {
      const parsed = stateChangeRequestSchema.safeParse(body);
      if (!parsed.success) return invalid(parsed.error.issues, 'state');
      const inbound = await owned(peer, remoteId);
      if ('ok' in inbound) return inbound;
      const result = await applyStateChange(store, peer, remoteId, parsed.data, now);
      return result.ok ? ok(result.value) : fail('INVALID_STATE', result.message);
    },

    async counters(peer: string, remoteId: number, now: number): Promise<Served<CountersResponse>> {
      const inbound = await owned(peer, remoteId);
      if ('ok' in inbound) return inbound;
      const counts = await countDeliveryLogs(store, remoteId);
      return ok({
        state: inbound.state,
        total: counts.total,
        pending: counts.byStatus.pending + counts.byStatus.sending,
        sent: counts.byStatus.sent,
        failed: counts.byStatus.failed,
        ignored: counts.byStatus.ignored,
        cancelled: counts.byStatus.cancelled,
        retried: counts.retried,
        byReason: counts.byReason,
        updatedAt: now,
      });
    },
  };
}

export type ExecutionService = ReturnType<typeof createExecutionService>;

export const isFinalState = (state: string): boolean => finalDeliveryStates.includes(state as DeliveryState);
