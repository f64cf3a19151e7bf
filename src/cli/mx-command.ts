import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { formatPublicIds } from '../shaping/public-ids.ts';
import { createRedisThrottle } from '../shaping/redis-throttle.ts';
import { loadRuleFiles, ruleFilesFor } from '../shaping/rule-loader.ts';
import { formatIssue } from '../shaping/rule-pack.ts';
import { readShapingSnapshots } from '../shaping/stats-store.ts';
import { formatStatsView, mergeSnapshots } from '../shaping/stats-view.ts';
import { printJson, withHerald, type CliContext } from './context.ts';

// `herald mx stats`: what each MTA node's shaping is doing right now (from the snapshots the
// nodes write to the database, plus live connection counts from Redis when it is configured).
// `herald mx match HOST`: which rule an MX host falls under, and its limits.

export function registerMxCommands(program: Command, context: CliContext): void {
  const mx = program.command('mx').description('MX rules and traffic shaping: live stats, rule matching');

  mx.command('stats')
    .description('per rule and per path: load against each limit, the binding limit, messages waiting, backoffs and suspensions')
    .option('--max-age <seconds>', 'ignore snapshots older than this (stopped nodes)', Number, 300)
    .option('--json', 'print the merged view as one JSON object')
    .action(async (options: { json?: boolean; maxAge: number }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const now = herald.clock.now();
        const snapshots = await readShapingSnapshots(herald.store.db, now - options.maxAge * 1_000);
        let shared: Record<string, number> | undefined;
        if (herald.config.shaping.redisUrl) {
          const redis = createRedisThrottle({ url: herald.config.shaping.redisUrl, keyPrefix: herald.config.shaping.redisKeyPrefix });
          try {
            shared = (await redis.snapshot(now)).connections;
          } finally {
            await redis.close();
          }
        }
        const view = mergeSnapshots(snapshots, now, shared);
        if (options.json) printJson(context, view);
        else for (const line of formatStatsView(view)) context.output.out(line);
      });
    });

  mx.command('match <host>')
    .description('show which MX rule applies to an MX host name (not the email domain) and its limits')
    .option('--public-id <id>', 'public id of the source address', Number, 0)
    .option('--json', 'print the rule as JSON')
    .action(async (host: string, options: { json?: boolean; publicId: number }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const { shaping } = herald.config;
        const loaded = loadRuleFiles(ruleFilesFor({ rulesFiles: shaping.rulesFiles, ...(shaping.siteRulesDir ? { siteRulesDir: shaping.siteRulesDir } : {}) }));
        if (!loaded.ok) throw new AppError('RULES_INVALID', loaded.issues.map(formatIssue).join('\n'));
        const rule = loaded.rules.match(host, options.publicId);
        const out = {
          host,
          publicId: options.publicId,
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
        if (options.json) printJson(context, out);
        else {
          context.output.out(`${host} → rule "${rule.name}" (${rule.source.file}:${rule.source.line}, masks ${rule.masks.join(', ')}, public ids ${out.publicIds})`);
          context.output.out(`  maxConnections ${rule.maxConnections} per path, maxMessagesPerHour ${rule.maxMessagesPerHour} ${rule.shared ? 'shared by every source IP' : 'per public id'}, maxMessagesPerConnection ${rule.maxMessagesPerConnection}, tls ${rule.tls}`);
        }
      });
    });
}
