import { systemClock, type Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/database.ts';
import { transitionDelivery } from '../delivery/lifecycle.ts';
import type { DeliveryState } from '../store/tables.ts';
import type { MidsourcingConfig } from './config.ts';
import { isFinalState } from './execution-service.ts';
import {
  applyLogChanges,
  countPendingLogs,
  deliveriesToSync,
  updateOutbound,
  type OutboundRow,
} from './outbound-store.ts';
import { createPeerClient, withRetries, type PeerClient, type RetryPolicy } from './peer-client.ts';

// Marketing side: pulls delivery-log outcomes back by the execution side's cursor (never by a
// clock, so skew between the machines cannot lose a log) and the counters, more often.

export interface SyncResult {
  deliveryId: number;
  applied: number;
  pages: number;
  cursor: number;
  remoteState: string;
  complete: boolean;
}

export async function syncDeliveryLogs(
  store: Store,
  client: PeerClient,
  outbound: OutboundRow,
  options: { pageSize: number; retry: RetryPolicy; clock?: Clock; maxPages?: number },
): Promise<SyncResult> {
  const clock = options.clock ?? systemClock;
  if (outbound.remote_id === null)
    throw new AppError(
      'INVALID_STATE',
      `delivery ${outbound.delivery_id} has not been submitted to ${outbound.peer} yet`,
    );
  let cursor = Number(outbound.log_cursor);
  let applied = 0;
  let pages = 0;
  for (;;) {
    const page = await withRetries(options.retry, () => client.logs(outbound.remote_id!, cursor, options.pageSize));
    if (!page.ok) {
      const message = `pulling logs of delivery ${outbound.delivery_id} from ${client.peerName}: ${page.code}: ${page.message}`;
      await updateOutbound(
        store,
        outbound.delivery_id,
        { last_error: message, last_error_at: clock.now() },
        clock.now(),
      );
      throw new AppError(page.retryable ? 'MID_REMOTE_UNAVAILABLE' : 'MID_REMOTE_REJECTED', message, {
        details: { remoteCode: page.code },
      });
    }
    const { changes, nextCursor, caughtUp, state } = page.value;
    await applyLogChanges(store, outbound.delivery_id, changes, nextCursor, clock.now());
    applied += changes.length;
    pages++;
    cursor = nextCursor;
    // While the execution side is sending, new changes keep coming: a pass ends after maxPages and
    // the next one continues from the stored cursor. A page with changes is acknowledged by the next
    // request (its cursor tells the execution side they are applied here, so it may purge them): a
    // complete pass ends on an empty, caught-up page.
    const more = !caughtUp || changes.length > 0;
    if (more && pages < (options.maxPages ?? 1_000)) continue;
    if (more) return { deliveryId: outbound.delivery_id, applied, pages, cursor, remoteState: state, complete: false };
    // Done when the execution side has finished and nothing is pending here any more: a stop that
    // cancels logs after changing state is still waited for.
    const complete = isFinalState(state) && (await countPendingLogs(store, outbound.delivery_id)) === 0;
    await updateOutbound(
      store,
      outbound.delivery_id,
      // A complete pull pass clears an earlier pull's error (a counters error is kept until then:
      // counters answering does not mean logs pages do).
      { remote_state: state, logs_complete: complete ? 1 : 0, last_error: null, last_error_at: null },
      clock.now(),
    );
    if (complete) await finishLocally(store, outbound.delivery_id, state as DeliveryState, clock.now());
    return { deliveryId: outbound.delivery_id, applied, pages, cursor, remoteState: state, complete };
  }
}

async function finishLocally(store: Store, deliveryId: number, remoteState: DeliveryState, now: number): Promise<void> {
  const target: DeliveryState = remoteState === 'stopped' || remoteState === 'failed' ? remoteState : 'finished';
  try {
    await transitionDelivery(store, deliveryId, target, now, { finished_at: now }, ['in_progress', 'paused']);
  } catch (error) {
    // Already final here (an operator stopped it, or the local MTA's finisher saw no pending log).
    if (!(error instanceof AppError && error.code === 'INVALID_STATE')) throw error;
  }
}

export async function syncDeliveryCounters(
  store: Store,
  client: PeerClient,
  outbound: OutboundRow,
  options: { retry: RetryPolicy; clock?: Clock },
) {
  const clock = options.clock ?? systemClock;
  if (outbound.remote_id === null)
    throw new AppError(
      'INVALID_STATE',
      `delivery ${outbound.delivery_id} has not been submitted to ${outbound.peer} yet`,
    );
  const counters = await withRetries(options.retry, () => client.counters(outbound.remote_id!));
  if (!counters.ok) {
    const message = `pulling counters of delivery ${outbound.delivery_id} from ${client.peerName}: ${counters.code}: ${counters.message}`;
    await updateOutbound(store, outbound.delivery_id, { last_error: message, last_error_at: clock.now() }, clock.now());
    throw new AppError(counters.retryable ? 'MID_REMOTE_UNAVAILABLE' : 'MID_REMOTE_REJECTED', message, {
      details: { remoteCode: counters.code },
    });
  }
  await updateOutbound(
    store,
    outbound.delivery_id,
    { counters: JSON.stringify(counters.value), counters_at: clock.now(), remote_state: counters.value.state },
    clock.now(),
  );
  return counters.value;
}

export function retryPolicyOf(config: MidsourcingConfig): RetryPolicy {
  return { maxAttempts: config.maxAttempts, baseMs: config.retryBaseMs, maxMs: config.retryMaxMs };
}

/** A client per configured peer, created on first use; close() closes them all. */
export function peerClients(config: MidsourcingConfig, clock?: Clock, logger?: Logger) {
  const clients = new Map<string, PeerClient>();
  return {
    get(name: string): PeerClient {
      let client = clients.get(name);
      if (!client) {
        const peer = config.peers.find((candidate) => candidate.name === name);
        if (!peer)
          throw new AppError(
            'CONFIG_INVALID',
            `midsourcing.peers has no peer named "${name}" (known: ${config.peers.map((p) => p.name).join(', ') || 'none'})`,
          );
        client = createPeerClient({
          peer,
          localName: config.name,
          timeoutMs: config.requestTimeoutMs,
          clock,
          ...(logger && { logger }),
        });
        clients.set(name, client);
      }
      return client;
    },
    close() {
      for (const client of clients.values()) client.close();
    },
  };
}

export type SyncKind = 'logs' | 'counters';

/**
 * Pure: the peer itself did not answer (not one delivery's error): timeouts, network errors, any
 * plain HTTP error (the execution server always answers a typed body: a gateway's 502, a proxy's 403),
 * an answer it did not sign or that was cut off unread, and the refusals that hold for every request
 * to it (a wrong secret, a clock off).
 */
export function peerUnreachable(remoteCode: unknown): boolean {
  return (
    typeof remoteCode === 'string' &&
    /^(TIMEOUT|E[A-Z_]+|HTTP_\d{3}|ANSWER_NOT_SIGNED|RESPONSE_TOO_LARGE|BAD_SIGNATURE|STALE_TIMESTAMP)$/.test(
      remoteCode,
    )
  );
}

/**
 * One pass over every outbound delivery still syncing; one delivery's failure does not stop the others.
 * A peer that did not answer (down, blackholed: every attempt timed out or was refused) is not asked
 * again in the same pass: its other deliveries are reported as skipped, so an unreachable instance
 * costs one delivery's retries, not one per delivery, and the other peers' deliveries are pulled.
 * `keepAlive` runs between deliveries (a workflow step renews its lease there).
 */
export async function syncAll(
  store: Store,
  config: MidsourcingConfig,
  kind: SyncKind,
  clock?: Clock,
  keepAlive?: () => Promise<void>,
  logger?: Logger,
): Promise<{ synced: number; failed: Array<{ deliveryId: number; error: string }>; results: unknown[] }> {
  const clients = peerClients(config, clock, logger);
  const failed: Array<{ deliveryId: number; error: string }> = [];
  const results: unknown[] = [];
  const unreachable = new Map<string, number>();
  try {
    for (const outbound of await deliveriesToSync(store)) {
      const down = unreachable.get(outbound.peer);
      if (down !== undefined) {
        failed.push({
          deliveryId: outbound.delivery_id,
          error: `skipped: ${outbound.peer} did not answer for delivery ${down} earlier in this pass`,
        });
        continue;
      }
      try {
        const client = clients.get(outbound.peer);
        results.push(
          kind === 'logs'
            ? await syncDeliveryLogs(store, client, outbound, {
                pageSize: config.logsPageSize,
                retry: retryPolicyOf(config),
                clock,
              })
            : {
                deliveryId: outbound.delivery_id,
                ...(await syncDeliveryCounters(store, client, outbound, { retry: retryPolicyOf(config), clock })),
              },
        );
      } catch (error) {
        if (error instanceof AppError && peerUnreachable(error.details.remoteCode))
          unreachable.set(outbound.peer, outbound.delivery_id);
        failed.push({
          deliveryId: outbound.delivery_id,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      await keepAlive?.();
    }
  } finally {
    clients.close();
  }
  return { synced: results.length, failed, results };
}
