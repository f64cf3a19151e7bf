import { AppError } from '../common/errors.ts';
import { maskUrl } from '../common/mask-url.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { Herald } from '../main.ts';
import { formatPublicIds } from './public-ids.ts';
import { createRedisThrottle } from './redis-throttle.ts';
import { loadRuleFiles, ruleFilesFor } from './rule-loader.ts';
import { formatIssue } from './rule-pack.ts';
import { readShapingSnapshots } from './stats-store.ts';
import { mergeSnapshots } from './stats-view.ts';

// `herald mx stats|match` and the API: the merged shaping view of every MTA node, and which MX rule
// an MX host name falls under.

export async function readMxStats(herald: Herald, maxAgeSeconds: number) {
  const now = herald.clock.now();
  const snapshots = await readShapingSnapshots(herald.store, now - maxAgeSeconds * 1_000);
  let shared: Record<string, number> | undefined;
  let sharedError: string | undefined;
  const { redisUrl } = herald.config.shaping;
  if (redisUrl) {
    const redis = createRedisThrottle({
      url: redisUrl,
      keyPrefix: herald.config.shaping.redisKeyPrefix,
      logger: herald.logger,
    });
    // The nodes' snapshots are in the database: a Redis outage, when they matter most, must not hide them.
    try {
      shared = (await redis.snapshot(now)).connections;
    } catch (error) {
      sharedError = `Redis at ${maskUrl(redisUrl)} does not answer: ${(error as Error).message}`;
    } finally {
      await redis.close();
    }
  }
  return {
    ...mergeSnapshots(snapshots, now, shared),
    ...(sharedError !== undefined && { sharedConnectionsError: sharedError }),
  };
}

/** Configuration only: no database needed (the CLI matches without opening one). */
export async function matchMxHost(config: HeraldConfig, host: string, publicId: number) {
  const { shaping } = config;
  const loaded = await loadRuleFiles(
    ruleFilesFor({
      rulesFiles: shaping.rulesFiles,
      ...(shaping.siteRulesDir ? { siteRulesDir: shaping.siteRulesDir } : {}),
    }),
  );
  if (!loaded.ok) throw new AppError('RULES_INVALID', loaded.issues.map(formatIssue).join('\n'));
  const rule = loaded.rules.match(host, publicId);
  return {
    host,
    publicId,
    rulesVersion: loaded.rules.version,
    rule: rule.name,
    masks: rule.masks,
    publicIds: formatPublicIds(rule.publicIds),
    shared: rule.shared,
    maxConnections: rule.maxConnections,
    maxMessagesPerHour: rule.maxMessagesPerHour,
    maxMessagesPerConnection: rule.maxMessagesPerConnection,
    timeouts: rule.timeouts,
    tls: rule.tls,
    source: rule.source,
  };
}
