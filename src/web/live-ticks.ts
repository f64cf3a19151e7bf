import { deliveryEta, etaUnlessRulesInvalid } from '../delivery/delivery-eta.ts';
import { getDelivery } from '../delivery/delivery-store.ts';
import type { Eta } from '../delivery/eta.ts';
import {
  failureBreakdown,
  throughputByMinute,
  type FailureBreakdown,
  type ThroughputMinute,
} from '../delivery/progress-store.ts';
import { summarizeDelivery, type DeliverySummary } from '../delivery/summary.ts';
import { runDoctor, type DoctorRun } from '../doctor/run-doctor.ts';
import type { Finding } from '../doctor/finding.ts';
import type { Herald } from '../main.ts';
import { databaseStatus, type DatabaseStatus } from '../workflows/db-status.ts';
import { createTickCache, type TickCache } from './tick-cache.ts';

// The live data of the delivery page. Each tick (2 s, the page's polling period) loads a delivery's
// counts, throughput and failure groups once, shared by every browser watching it, from counters
// (migrations 0028, 0029): a few rows however many logs. The slower parts read the logs themselves
// (the ETA groups pending logs by domain, the doctor scans them): they are shared the same way,
// reloaded every 15 s at most (longer when a load is slow: tick-cache.ts), and never waited for by
// the page or its live region, which show the last value (or "estimating") while one loads.

export interface DeliveryTick {
  summary: DeliverySummary;
  startedAt: number | null;
  finishedAt: number | null;
  throughput: ThroughputMinute[];
  failures: FailureBreakdown;
  /** Messages done (sent, failed, ignored) per second since the previous tick; null on the first. */
  rate: number | null;
  at: number;
}

export type EtaOrError = Eta | { error: string };

export interface LiveTicks {
  tick: TickCache<number, DeliveryTick>;
  eta: TickCache<number, EtaOrError>;
  findings: TickCache<number, Finding[]>;
  /**
   * Whole doctor runs ('all', or one delivery's) behind GET /ui/doctor and the API's doctor routes:
   * each is a pass over the logs, so a few viewers reloading them had the event loop (and an MTA in
   * the same process) busy all the time; shared and kept like the findings above instead.
   */
  doctor: TickCache<number | 'all', DoctorRun>;
  /**
   * The ETA GET /api/v1/deliveries/{id} carries, asked only in a state with one (etaStates): it groups
   * the pending logs by domain, so a client polling it ran that scan per request; shared the same way.
   */
  shownEta: TickCache<number, Eta | undefined>;
  /**
   * `herald db status` behind GET /ui/database and the API's GET /database: on SQLite it reads every
   * page (dbstat) and counts every table, so viewers reloading it kept the event loop busy; shared.
   */
  database: TickCache<'all', DatabaseStatus>;
}

const done = (s: DeliverySummary) => s.sent + s.failed + s.ignored;

export function createLiveTicks(options: { herald: Herald; tickMs?: number; detailsMs?: number }): LiveTicks {
  const { herald } = options;
  const tick = createTickCache<number, DeliveryTick>({
    lifetimeMs: options.tickMs ?? 2_000,
    clock: herald.clock,
    load: async (id, previous) => {
      const at = herald.clock.now();
      const [delivery, summary, throughput, failures] = await Promise.all([
        getDelivery(herald.store, id),
        summarizeDelivery(herald.store, id),
        throughputByMinute(herald.store, id),
        failureBreakdown(herald.store, id, 20),
      ]);
      const elapsed = previous ? at - previous.at : 0;
      const rate =
        previous && elapsed > 0 && elapsed < 60_000
          ? Math.round(((done(summary) - done(previous.value.summary)) * 10_000) / elapsed) / 10
          : null;
      return {
        summary,
        startedAt: delivery.started_at === null ? null : Number(delivery.started_at),
        finishedAt: delivery.finished_at === null ? null : Number(delivery.finished_at),
        throughput,
        failures,
        rate,
        at,
      };
    },
  });
  const slow = <K, V>(load: (key: K) => Promise<V>) =>
    // Kept at least 50× their load: each takes at most 2 % of the event loop (an MTA in the same
    // process shares it), whatever the delivery's size and however many watch.
    createTickCache<K, V>({ lifetimeMs: options.detailsMs ?? 15_000, clock: herald.clock, load, costFactor: 50 });
  return {
    tick,
    eta: slow((id: number) => deliveryEta(herald, id).catch((error: Error) => ({ error: error.message }))),
    findings: slow(
      async (id: number) => (await runDoctor(herald, { deliveryId: id, skipConfiguration: true })).findings,
    ),
    doctor: slow((key: number | 'all') => runDoctor(herald, key === 'all' ? {} : { deliveryId: key })),
    database: slow((_key: 'all') => databaseStatus(herald.store)),
    shownEta: slow((id: number) => etaUnlessRulesInvalid(herald, id)),
  };
}
