import type { Clock } from '../common/clock.ts';
import { AppError } from '../common/errors.ts';
import type { Logger } from '../common/logger.ts';
import type { ShapingConfig } from '../config/schema.ts';
import type { Store } from '../store/database.ts';
import { compileAffinities, type AffinityTable } from './affinity.ts';
import { RulesHolder } from './compiled-rules.ts';
import { createMemoryThrottle } from './memory-throttle.ts';
import { createRedisThrottle } from './redis-throttle.ts';
import { loadRuleFiles, ruleFilesFor, type RuleSources } from './rule-loader.ts';
import { formatIssue } from './rule-pack.ts';
import { watchRules, type RulesWatcher } from './rules-reload.ts';
import { Shaper, type ShaperDefaults } from './shaper.ts';
import { snapshotRowLimit, type DnsStaleAnswer } from './snapshot.ts';
import { writeShapingSnapshot } from './stats-store.ts';

// Composition of shaping from the configuration, and its timers (rule reload, stats snapshots).
// The MTA role creates one ShapingRuntime, hands `shaper` and `affinities` to its pool, calls
// start() when it starts sending and stop() when it stops.

export interface ShapingRuntime {
  shaper: Shaper;
  affinities: AffinityTable;
  rules: RulesHolder;
  sources: RuleSources;
  start(): void;
  /** Writes one snapshot now (also called by the timer). */
  writeSnapshot(): Promise<void>;
  /** Where snapshots read the names the MTA's MX resolver answers stale (shown by `herald mx stats`). */
  reportDnsStale(source: () => DnsStaleAnswer[]): void;
  stop(): Promise<void>;
}

export interface CreateShapingOptions {
  config: ShapingConfig;
  defaults: ShaperDefaults;
  clock: Clock;
  logger: Logger;
  nodeId: string;
  /** Where snapshots go for `herald mx stats`; omit to keep stats in memory only. */
  store?: Store;
}

export async function createShapingRuntime(options: CreateShapingOptions): Promise<ShapingRuntime> {
  const { config } = options;
  const sources: RuleSources = {
    rulesFiles: config.rulesFiles,
    ...(config.siteRulesDir ? { siteRulesDir: config.siteRulesDir } : {}),
  };
  const loaded = await loadRuleFiles(ruleFilesFor(sources));
  if (!loaded.ok)
    throw new AppError('RULES_INVALID', `MX rules do not validate:\n${loaded.issues.map(formatIssue).join('\n')}`, {
      details: { issues: loaded.issues },
    });
  const rules = new RulesHolder(loaded.rules);
  const backend = config.redisUrl
    ? createRedisThrottle({
        url: config.redisUrl,
        keyPrefix: config.redisKeyPrefix,
        owner: options.nodeId,
        logger: options.logger,
      })
    : createMemoryThrottle();
  const shaper = new Shaper({
    rules,
    backend,
    clock: options.clock,
    defaults: options.defaults,
    periodMs: config.ratePeriodMs,
    leaseMs: config.connectionLeaseMs,
    breaker: {
      enabled: config.breaker.enabled,
      minMessages: config.breaker.minMessages,
      errorRatio: config.breaker.errorRatio,
      windowMs: config.breaker.windowMinutes * 60_000,
      suspendMs: config.breaker.suspendMinutes * 60_000,
    },
    backoff: config.backoff,
    logger: options.logger,
    nodeId: options.nodeId,
  });
  const affinities = compileAffinities(config.affinities);
  let watcher: RulesWatcher | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  let writing: Promise<void> | undefined;
  let dnsStale: (() => DnsStaleAnswer[]) | undefined;

  const writeSnapshot = async (): Promise<void> => {
    if (!options.store) return;
    const snapshot = await shaper.snapshot();
    const stale = dnsStale?.().slice(0, snapshotRowLimit) ?? [];
    await writeShapingSnapshot(options.store, stale.length > 0 ? { ...snapshot, dnsStale: stale } : snapshot);
  };
  const tick = () => {
    if (writing) return; // a slow database must not pile up writes
    writing = writeSnapshot()
      .catch((error: unknown) =>
        options.logger.warn({ err: error, event: 'shaping.snapshot_failed' }, 'shaping snapshot not written'),
      )
      .finally(() => {
        writing = undefined;
      });
  };

  return {
    shaper,
    affinities,
    rules,
    sources,
    writeSnapshot,
    reportDnsStale(source) {
      dnsStale = source;
    },
    start() {
      watcher ??= watchRules({ holder: rules, sources, intervalMs: config.reloadCheckMs, logger: options.logger });
      if (!statsTimer) {
        statsTimer = setInterval(tick, config.statsIntervalMs);
        statsTimer.unref();
      }
    },
    async stop() {
      watcher?.stop();
      watcher = undefined;
      if (statsTimer) clearInterval(statsTimer);
      statsTimer = undefined;
      await writing;
      // A last snapshot, so `herald mx stats` can still explain the run that just ended.
      await writeSnapshot().catch(() => undefined);
      await backend.close();
    },
  };
}
