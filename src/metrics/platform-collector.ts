import { Gauge, collectDefaultMetrics } from 'prom-client';
import type { Herald } from '../main.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { mergeSnapshots } from '../shaping/stats-view.ts';
import { consolidationWatermark, firstEventAtAfter, lastTrackingEventId } from '../tracking/tracking-store.ts';
import { createWorkflowEngine } from '../workflows/engine.ts';
import { manualTicker } from '../workflows/ticker.ts';
import { domainClass } from './labels.ts';
import { databaseSize, deliveriesByState, dueByDomain } from './metrics-store.ts';
import { refreshedValue, UnavailableValue } from './refreshed-value.ts';
import { ruleGauges } from './rule-gauges.ts';

// Gauges of the platform, read from the database: one shared read per `cacheMs` whatever the number
// of scrapers (Prometheus, a second Prometheus, a curl), refreshed behind the scrape that finds it
// stale (src/metrics/refreshed-value.ts), and the database size at most once a minute. While the
// database does not answer, a value over two minutes old (twice its cache time if longer) is not
// served: those gauges show nothing, the process's own counters are still served, and
// herald_database_gauges_age_seconds tells how old the last read is.

const shapingMaxAgeMs = 300_000;

async function readPlatform(
  herald: Herald,
  workflowStatus: () => ReturnType<ReturnType<typeof createWorkflowEngine>['status']>,
) {
  const now = herald.clock.now();
  const [states, due, workflows, snapshots, watermark, lastEvent] = await Promise.all([
    deliveriesByState(herald.store),
    dueByDomain(herald.store, now),
    workflowStatus(),
    readShapingSnapshots(herald.store, now - shapingMaxAgeMs),
    consolidationWatermark(herald.store),
    lastTrackingEventId(herald.store),
  ]);
  const oldestUnconsolidatedAt = lastEvent > watermark ? await firstEventAtAfter(herald.store, watermark) : null;
  const dueByClass = new Map<string, number>();
  for (const row of due)
    dueByClass.set(domainClass(row.domain), (dueByClass.get(domainClass(row.domain)) ?? 0) + row.count);
  return {
    states,
    dueByClass,
    workflows,
    shaping: mergeSnapshots(snapshots, now),
    trackingBacklog: Math.max(0, lastEvent - watermark),
    consolidationLagSeconds: oldestUnconsolidatedAt === null ? 0 : Math.max(0, (now - oldestUnconsolidatedAt) / 1000),
  };
}

export function registerPlatformCollector(
  herald: Herald,
  options: { cacheMs?: number; databaseCacheMs?: number; workflowCacheMs?: number } = {},
): void {
  const registry = herald.metrics.registry;
  const cacheMs = options.cacheMs ?? 5_000;
  const databaseCacheMs = options.databaseCacheMs ?? 60_000;
  const engine = createWorkflowEngine({ ...herald, ticker: manualTicker });
  collectDefaultMetrics({ register: registry, prefix: 'herald_' });

  // Workflow health changes at run boundaries (minutes to hours) and is the costliest read (every
  // schedule's next slot): read at most every workflowCacheMs (bench/metrics.ts).
  const workflowCacheMs = Math.max(cacheMs, options.workflowCacheMs ?? 30_000);
  // One read per scrape at least: the gauges of one scrape share the read in flight (with cacheMs 0
  // each gauge used to read everything again); a stale value is refreshed behind the scrape.
  const onRefreshError = (error: unknown) =>
    herald.logger.warn({ err: error }, 'metrics: gauges from the database not refreshed');
  const now = () => herald.clock.now();
  // Two minutes: a scrape a minute (a common interval) never waits for a read, as the cache intends.
  const servedFor = (maxAgeMs: number) => ({ maxAgeMs, maxServedAgeMs: Math.max(120_000, 2 * maxAgeMs) });
  const workflowStatus = refreshedValue({
    read: () => engine.status(),
    ...servedFor(workflowCacheMs),
    now,
    onRefreshError,
  });
  const platform = refreshedValue({
    read: () => readPlatform(herald, workflowStatus),
    ...servedFor(cacheMs),
    now,
    onRefreshError,
  });
  const databaseFacts = refreshedValue({
    read: () => databaseSize(herald.store),
    ...servedFor(databaseCacheMs),
    now,
    onRefreshError,
  });

  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect: (set: (labels: Record<L, string>, value: number) => void) => Promise<void>,
  ) => {
    let available = true;
    // While the database does not answer (the failed read is logged once) a gauge has no sample:
    // not a 500 that would hide the process's own counters too, nor the 0 a gauge without labels
    // shows once reset (0 backoffs, a database of 0 bytes). Any other error is a bug: let it out.
    const metric = new (class extends Gauge<L> {
      override async get() {
        const got = await super.get();
        return available ? got : { ...got, values: [] };
      }
    })({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        available = true;
        try {
          await collect((labels, value) => (labelNames.length ? this.set(labels, value) : this.set(value)));
        } catch (error) {
          if (!(error instanceof UnavailableValue)) throw error;
          available = false;
        }
      },
    });
    return metric;
  };

  gauge(
    'herald_database_gauges_age_seconds',
    'seconds since the last successful read of the gauges read from the database (since the process started, before any); grows while the database does not answer',
    [],
    async (set) => {
      set({}, Math.max(0, platform.ageMs() / 1000));
    },
  );
  gauge('herald_deliveries', 'deliveries by state', ['state'], async (set) => {
    for (const row of (await platform()).states) set({ state: row.state }, row.count);
  });
  gauge(
    'herald_queue_due',
    'pending delivery logs due now, by provider class of the recipient domain',
    ['domain_class'],
    async (set) => {
      for (const [domainClass, count] of (await platform()).dueByClass) set({ domain_class: domainClass }, count);
    },
  );
  gauge(
    'herald_workflow_healthy',
    '1 when the workflow is healthy (health ok in herald workflows list), 0 otherwise',
    ['workflow'],
    async (set) => {
      for (const w of (await platform()).workflows) set({ workflow: w.name }, w.health === 'ok' ? 1 : 0);
    },
  );
  gauge(
    'herald_workflow_last_success_timestamp_seconds',
    'end of the last successful run',
    ['workflow'],
    async (set) => {
      for (const w of (await platform()).workflows)
        if (w.lastSuccessAt) set({ workflow: w.name }, Date.parse(w.lastSuccessAt) / 1000);
    },
  );
  gauge(
    'herald_mx_rule_load',
    'messages per hour against the MX rule limit (1 = at the limit), per rule and scope',
    ['rule', 'scope'],
    async (set) => {
      for (const rule of ruleGauges((await platform()).shaping.rules))
        set({ rule: rule.rule, scope: rule.scope }, rule.load);
    },
  );
  gauge(
    'herald_mx_rule_binding',
    '1 for the limit that binds each MX rule now (none, maxConnections, maxMessagesPerHour, backoff)',
    ['rule', 'scope', 'limit'],
    async (set) => {
      for (const rule of ruleGauges((await platform()).shaping.rules))
        set({ rule: rule.rule, scope: rule.scope, limit: rule.binding }, 1);
    },
  );
  gauge('herald_mx_throttled_paths', 'paths (source IP, MX IP) held back by a limit now', [], async (set) => {
    const { shaping } = await platform();
    const listed = shaping.paths.filter((p) => p.binding !== 'none').length;
    set({}, listed + (shaping.omitted?.throttledPaths ?? 0));
  });
  gauge('herald_mx_backoffs_active', 'backoffs in force (rule packs: 421 4.7.0 → halve the rate…)', [], async (set) => {
    set({}, (await platform()).shaping.backoffs.length);
  });
  gauge('herald_mx_suspensions_active', 'domains suspended by the breaker', [], async (set) => {
    set({}, (await platform()).shaping.suspensions.length);
  });
  gauge(
    'herald_tracking_events_unconsolidated',
    'raw tracking events not yet consolidated into indicators',
    [],
    async (set) => {
      set({}, (await platform()).trackingBacklog);
    },
  );
  gauge(
    'herald_tracking_consolidation_lag_seconds',
    'age of the oldest raw tracking event not yet consolidated into indicators (0 when none waits)',
    [],
    async (set) => {
      set({}, (await platform()).consolidationLagSeconds);
    },
  );
  gauge('herald_database_size_bytes', 'database size (refreshed at most once a minute)', [], async (set) => {
    set({}, (await databaseFacts()).sizeBytes);
  });
  gauge('herald_table_dead_rows', 'dead rows per table (PostgreSQL estimate)', ['table'], async (set) => {
    for (const t of (await databaseFacts()).tables) if (t.deadRows !== null) set({ table: t.name }, t.deadRows);
  });
}
