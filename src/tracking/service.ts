import { guardConnections } from '../common/connection-guard.ts';
import { addressMatcher } from '../common/connection-limits.ts';
import { addHealthRoutes } from '../metrics/server.ts';
import type { FastifyInstance } from 'fastify';
import type { Herald } from '../main.ts';
import { quarantineSettings } from '../quarantine/settings.ts';
import {
  deliveryTemplates,
  insertTrackingEvents,
  insertTrackingEventsWithin,
  trackedLog,
  trackingLinks,
} from './tracking-store.ts';
import { clickBurst } from './automation.ts';
import { createDeliveryCache } from './delivery-cache.ts';
import { createEventLog, type EventLog } from './event-log.ts';
import { loadKeyRing, trackingBaseUrl } from './keys.ts';
import { createSqliteEventWriter, type EventWriter } from './sqlite-event-writer.ts';
import { buildTrackingApp } from './server.ts';
import type { KeyRing } from './token.ts';
import { applyAddressEventsWithin } from '../quarantine/address-events.ts';
import { inTransaction } from '../store/database.ts';

// Wires the tracking server to a Herald (store, config, clock): the `tracking` role, the demo and
// the benchmark all build it here.

export interface TrackingService {
  app: FastifyInstance;
  events: EventLog;
  keyRing: KeyRing;
  /** Listens on config.tracking.host:port (port 0 = any free port); returns the address. */
  listen(): Promise<string>;
  /** Stops accepting, answers what is in flight, writes every buffered event. */
  close(): Promise<void>;
}

export async function createTrackingService(herald: Herald): Promise<TrackingService> {
  const config = herald.config.tracking;
  const { store, logger } = herald;
  const keyRing = await loadKeyRing(store, config, herald.clock.now());
  // SQLite: batches written off the event loop by a worker thread; PostgreSQL I/O is already asynchronous.
  const writer: EventWriter =
    store.dialect === 'sqlite' && store.location !== ':memory:'
      ? createSqliteEventWriter(store.location)
      : { write: (batch) => insertTrackingEvents(store, batch), close: async () => {} };
  const events = createEventLog({
    write: (batch) => writer.write(batch),
    maxBuffered: config.maxBufferedEvents,
    batchSize: config.flushBatchSize,
    flushIntervalMs: config.flushIntervalMs,
    onError: (error, size) =>
      logger.error({ err: String(error), size }, 'writing tracking events failed; kept for retry'),
  });
  const cache = createDeliveryCache({
    source: {
      links: (id) => trackingLinks(store, id),
      templates: (id) => deliveryTemplates(store, id),
      log: (id) => trackedLog(store, id),
    },
    decorator: {
      keyRing,
      baseUrl: trackingBaseUrl(config),
      unsubscribeMailDomain: config.unsubscribeMailDomain || null,
    },
  });
  // Each recorded event counted for /metrics (herald_tracking_events_total) on its way to the log.
  const counted: EventLog = {
    ...events,
    add(event) {
      herald.metrics.countTrackingEvent(event.kind);
      return events.add(event);
    },
  };
  const app = buildTrackingApp({
    keyRing,
    cache,
    events: counted,
    // Through the quarantine's address events: denylisted at once, with a timeline entry naming the
    // delivery, and the raw event the opt-out indicators count, in one transaction.
    unsubscribe: async (email, event) => {
      const applied = await inTransaction(store, async (trx) => {
        const result = await applyAddressEventsWithin(
          trx,
          [{ email, at: event.at, source: 'unsubscribe', deliveryId: event.deliveryId, deliveryLogId: event.logId }],
          quarantineSettings(herald.config),
          event.at,
        );
        if (result.duplicates > 0) return false;
        await insertTrackingEventsWithin(trx, [event]);
        return true;
      });
      if (applied) herald.metrics.countTrackingEvent(event.kind);
      return applied;
    },
    clock: herald.clock,
    flags: { automatedClickSeconds: config.automatedClickSeconds, burstClicks: clickBurst.clicks },
    messageBudget: { burst: config.messageEventBurst, perSecond: config.messageEventsPerSecond },
    logger,
  });
  // Load balancers in front of tracking servers probe them on their own port, open to the Internet.
  addHealthRoutes(app, herald, 'public');
  guardConnections(app.server, {
    name: 'tracking',
    configSection: 'tracking',
    limits: config,
    uncapped: addressMatcher(config.proxies),
    logger,
    clock: herald.clock,
    onRefused: (reason) => herald.metrics.countRefusedConnection('tracking', reason),
  });
  return {
    app,
    events,
    keyRing,
    listen: () => app.listen({ host: config.host, port: config.port }),
    async close() {
      await app.close();
      await events.stop();
      await writer.close();
    },
  };
}
