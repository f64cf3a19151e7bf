import type { Store } from '../store/database.ts';
import {
  committedTrackingEventId,
  consolidationWatermark,
  deliveriesWithEventsBetween,
  deliveryEventsPage,
  hasDeliveryIndicators,
  purgedLogDomain,
  replaceDeliveryIndicators,
  sentByDomain,
  setConsolidationWatermark,
} from './tracking-store.ts';
import { createConsolidation } from './consolidate.ts';

// The tracking workflow's work: every delivery with raw events past the watermark is recomputed
// from all its events (idempotent: a rerun after a crash gives the same rows), then the watermark
// moves. Events are read in pages so memory holds per-recipient sets, never the whole log.

const pageSize = 10_000;

export async function consolidateDelivery(
  store: Store,
  deliveryId: number,
  openDedupMs: number,
  now: number,
  keepAlive?: () => Promise<void>,
): Promise<{ events: number; kept: boolean }> {
  const consolidation = createConsolidation(openDedupMs);
  let afterId = 0;
  let events = 0;
  let purgedLogs = false;
  for (;;) {
    const page = await deliveryEventsPage(store, deliveryId, afterId, pageSize);
    for (const event of page) {
      if (event.domain === purgedLogDomain) purgedLogs = true;
      consolidation.add(event);
    }
    events += page.length;
    if (page.length < pageSize) break;
    afterId = page[page.length - 1]!.id;
    await keepAlive?.();
  }
  // Logs are purged after workflows.cleanup.deliveryLogsDays, links work for tracking.tokenTtlDays:
  // recomputed without its recipients, a delivery's kept indicators became sent 0 and every domain
  // "(purged)". They stay as consolidated before the purge; later events remain in the raw log.
  if (purgedLogs && (await hasDeliveryIndicators(store, deliveryId))) return { events, kept: true };
  const rows = consolidation.result(await sentByDomain(store, deliveryId));
  await replaceDeliveryIndicators(store, deliveryId, rows, now);
  return { events, kept: false };
}

export interface ConsolidationSummary {
  deliveries: number[];
  events: number;
  watermark: number;
}

export async function consolidatePending(
  store: Store,
  openDedupMs: number,
  now: number,
  keepAlive?: () => Promise<void>,
): Promise<ConsolidationSummary> {
  const from = await consolidationWatermark(store);
  const upTo = await committedTrackingEventId(store);
  if (upTo <= from) return { deliveries: [], events: 0, watermark: from };
  const deliveries = await deliveriesWithEventsBetween(store, from, upTo);
  let events = 0;
  for (const deliveryId of deliveries) {
    events += (await consolidateDelivery(store, deliveryId, openDedupMs, now, keepAlive)).events;
    await keepAlive?.();
  }
  await setConsolidationWatermark(store, upTo);
  return { deliveries, events, watermark: upTo };
}
