import type { Store } from '../store/database.ts';
import {
  listOutbound,
  listParts,
  localDeliveryStates,
  type OutboundPartRow,
  type OutboundRow,
} from './outbound-store.ts';
import { forwardedTarget } from './state-forward.ts';
import type { CountersResponse } from './wire.ts';

// `herald mid status`: per pushed delivery, where the parts are and what slows them down. The
// verdict is computed from the per-part figures so "the marketing side is too slow building parts"
// reads as such, distinct from a slow execution side or a lossy link.

export interface Distribution {
  avg: number | null;
  p95: number | null;
  max: number | null;
}

export type Bottleneck = 'none' | 'building' | 'appending' | 'network';

export interface OutboundStatus {
  deliveryId: number;
  peer: string;
  remoteId: number | null;
  state: string;
  remoteState: string | null;
  parts: { total: number; pending: number; acked: number };
  recipients: number;
  attempts: number;
  retries: number;
  timeouts: number;
  buildMs: Distribution;
  appendMs: Distribution;
  bottleneck: Bottleneck;
  diagnosis: string;
  lastError: string | null;
  lastErrorAt: number | null;
  logs: { cursor: number; applied: number; complete: boolean; syncedAt: number | null };
  counters: CountersResponse | null;
  countersAt: number | null;
  /** The last pause, resume or stop forwarded to the execution instance; null if none was ever made. */
  stateChange: StateChangeStatus | null;
}

export interface StateChangeStatus {
  /** The marketing delivery's state now. */
  localState: string | null;
  /** The latest target recorded for forwarding, and its version (null/0: not recorded yet). */
  target: string | null;
  version: number;
  ackedVersion: number;
  /** True when the execution instance acknowledged the latest version and the local state has not changed since. */
  reached: boolean;
  /** What the execution side did with the acknowledged version (applied, already, held, final, duplicate). */
  outcome: string | null;
  remoteState: string | null;
  attempts: number;
  lastError: string | null;
  changedAt: number | null;
  ackedAt: number | null;
}

/** Pure: whether the local state has reached the execution instance. */
export function stateChangeStatus(outbound: OutboundRow, localState: string | null): StateChangeStatus | null {
  const version = Number(outbound.state_version);
  const ackedVersion = Number(outbound.state_acked_version);
  const wanted = localState === null ? undefined : forwardedTarget(localState);
  const recorded = outbound.state_target ?? 'in_progress';
  const unrecorded = wanted !== undefined && wanted !== recorded;
  if (version === 0 && !unrecorded) return null;
  return {
    localState,
    target: outbound.state_target,
    version,
    ackedVersion,
    reached: !unrecorded && ackedVersion >= version,
    outcome: outbound.state_outcome,
    remoteState: outbound.state_remote,
    attempts: Number(outbound.state_attempts),
    lastError: outbound.state_error,
    changedAt: outbound.state_changed_at === null ? null : Number(outbound.state_changed_at),
    ackedAt: outbound.state_acked_at === null ? null : Number(outbound.state_acked_at),
  };
}

export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { avg: null, p95: null, max: null };
  const sorted = [...values].sort((a, b) => a - b);
  const avg = Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length);
  return {
    avg,
    p95: sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)]!,
    max: sorted[sorted.length - 1]!,
  };
}

/** Pure: the verdict from the parts' figures. */
export function diagnose(parts: readonly OutboundPartRow[]): { bottleneck: Bottleneck; diagnosis: string } {
  const measured = parts.filter((part) => part.build_ms !== null && part.latency_ms !== null);
  if (measured.length === 0) return { bottleneck: 'none', diagnosis: 'no part pushed yet' };
  const attempts = parts.reduce((sum, part) => sum + part.attempts, 0);
  const timeouts = parts.reduce((sum, part) => sum + part.timeouts, 0);
  const retries = attempts - measured.length;
  if (retries > measured.length / 4) {
    return {
      bottleneck: 'network',
      diagnosis: `${retries} retries for ${measured.length} parts (${timeouts} timeouts): the link or the execution instance is failing requests; see the last error`,
    };
  }
  const build = measured.reduce((sum, part) => sum + part.build_ms!, 0);
  const append = measured.reduce((sum, part) => sum + part.latency_ms!, 0);
  if (build > append) {
    return {
      bottleneck: 'building',
      diagnosis: `the marketing side is too slow building parts: ${Math.round(build / measured.length)} ms per part to read and compress vs ${Math.round(append / measured.length)} ms to append`,
    };
  }
  return {
    bottleneck: 'appending',
    diagnosis: `the execution side sets the pace: ${Math.round(append / measured.length)} ms per part to append vs ${Math.round(build / measured.length)} ms to build`,
  };
}

export function summarizeOutbound(
  outbound: OutboundRow,
  parts: readonly OutboundPartRow[],
  localState: string | null = null,
): OutboundStatus {
  const acked = parts.filter((part) => part.state === 'acked').length;
  const attempts = parts.reduce((sum, part) => sum + part.attempts, 0);
  const { bottleneck, diagnosis } = diagnose(parts);
  return {
    deliveryId: Number(outbound.delivery_id),
    peer: outbound.peer,
    remoteId: outbound.remote_id === null ? null : Number(outbound.remote_id),
    state: outbound.state,
    remoteState: outbound.remote_state,
    parts: { total: parts.length, pending: parts.length - acked, acked },
    recipients: Number(outbound.recipients),
    attempts,
    retries: Math.max(0, attempts - parts.filter((part) => part.attempts > 0).length),
    timeouts: parts.reduce((sum, part) => sum + part.timeouts, 0),
    buildMs: distribution(parts.flatMap((part) => (part.build_ms === null ? [] : [part.build_ms]))),
    appendMs: distribution(
      parts.flatMap((part) => (part.latency_ms === null || part.state !== 'acked' ? [] : [part.latency_ms])),
    ),
    bottleneck,
    diagnosis,
    lastError:
      outbound.last_error ??
      [...parts].reverse().find((part) => part.last_error !== null && part.state !== 'acked')?.last_error ??
      null,
    lastErrorAt: outbound.last_error_at === null ? null : Number(outbound.last_error_at),
    logs: {
      cursor: Number(outbound.log_cursor),
      applied: Number(outbound.logs_applied),
      complete: outbound.logs_complete === 1,
      syncedAt: outbound.logs_synced_at === null ? null : Number(outbound.logs_synced_at),
    },
    counters: outbound.counters === null ? null : (JSON.parse(outbound.counters) as CountersResponse),
    countersAt: outbound.counters_at === null ? null : Number(outbound.counters_at),
    stateChange: stateChangeStatus(outbound, localState),
  };
}

export async function outboundStatuses(store: Store, deliveryId?: number): Promise<OutboundStatus[]> {
  const rows = await listOutbound(store, deliveryId);
  const states = await localDeliveryStates(
    store,
    rows.map((row) => Number(row.delivery_id)),
  );
  return Promise.all(
    rows.map(async (row) =>
      summarizeOutbound(row, await listParts(store, row.delivery_id), states.get(Number(row.delivery_id)) ?? null),
    ),
  );
}

const ms = (d: Distribution) => (d.avg === null ? '-' : `avg ${d.avg} / p95 ${d.p95} / max ${d.max} ms`);

export function formatOutboundStatus(status: OutboundStatus): string[] {
  const counters = status.counters;
  return [
    `delivery ${status.deliveryId} → ${status.peer} (remote ${status.remoteId ?? '-'}): ${status.state}${status.remoteState ? `, remote ${status.remoteState}` : ''}`,
    `  parts ${status.parts.acked}/${status.parts.total} acknowledged, ${status.parts.pending} pending; ${status.recipients} recipients; ${status.attempts} attempts, ${status.retries} retries, ${status.timeouts} timeouts`,
    `  build ${ms(status.buildMs)}; append ${ms(status.appendMs)}`,
    `  ${status.diagnosis}`,
    `  logs: cursor ${status.logs.cursor}, ${status.logs.applied} applied${status.logs.complete ? ', complete' : ''}${status.logs.syncedAt ? `, last pull ${new Date(status.logs.syncedAt).toISOString()}` : ', never pulled'}`,
    ...(counters
      ? [
          `  counters: sent ${counters.sent}, failed ${counters.failed}, ignored ${counters.ignored}, pending ${counters.pending}, cancelled ${counters.cancelled} (at ${new Date(status.countersAt!).toISOString()})`,
        ]
      : []),
    ...(status.stateChange ? [formatStateChange(status.peer, status.stateChange)] : []),
    ...(status.lastError ? [`  last error: ${status.lastError}`] : []),
  ];
}

const iso = (at: number | null) => (at === null ? '-' : new Date(at).toISOString());

function formatStateChange(peer: string, change: StateChangeStatus): string {
  const wanted = change.localState ?? change.target ?? '-';
  if (change.reached) {
    return `  state: ${change.target} (version ${change.version}) reached ${peer}: ${change.outcome}, remote ${change.remoteState} (at ${iso(change.ackedAt)})`;
  }
  if (change.version === 0 || change.target !== wanted)
    return `  state: ${wanted} NOT forwarded to ${peer} yet (the mid-sync-counters workflow or herald mid sync forwards it)`;
  return `  state: ${change.target} (version ${change.version}) NOT reached ${peer} yet: ${change.attempts} attempt(s)${change.lastError ? `, last error ${change.lastError}` : ''}`;
}
