import type { Command } from 'commander';
import { AppError } from '../common/errors.ts';
import { formatDiff } from '../rules-versions/diff.ts';
import { ruleVersionView } from '../rules-versions/versions-view.ts';
import { updateRulePacksNow } from '../rules-versions/operator-update.ts';
import { rollbackRulePack } from '../rules-versions/update.ts';
import { listVersions } from '../rules-versions/rule-version-store.ts';
import { printJson, withHerald, type CliContext } from './context.ts';
import type { RuleKind } from '../store/tables.ts';

// `herald rules versions|update|rollback`: the rule-pack versions stored by the deliverability-update
// workflow (docs/deliverability-update.md). `update` runs the workflow's step now, in this process,
// holding the workflow's lease: it refuses while a run holds it, and no run starts meanwhile.

export function registerRuleVersionCommands(rules: Command, context: CliContext): void {
  rules
    .command('versions')
    .description('rule-pack versions stored by deliverability-update, newest first (* = active)')
    .option('--kind <kind>', 'mx or bounce (default: both)')
    .option('--limit <n>', 'at most this many', '50')
    .option(
      '--json',
      'NDJSON: {"id","kind","version","active","source","replacesId","createdAt","activatedAt","diff"} per version',
    )
    .action(async (options: { kind?: string; limit: string; json?: boolean }, command: Command) => {
      const kind = options.kind === undefined ? undefined : parseKind(options.kind);
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new AppError('INPUT_INVALID', '--limit: expected a positive integer');
      await withHerald(context, command, async (herald) => {
        const rows = await listVersions(herald.store, { ...(kind ? { kind } : {}), limit });
        const versions = rows.map(ruleVersionView);
        if (options.json) {
          for (const version of versions) printJson(context, version);
          return;
        }
        if (versions.length === 0)
          return context.output.out(
            'no rule versions yet (herald rules update, or the deliverability-update workflow)',
          );
        for (const v of versions) {
          context.output.out(
            `${v.active ? '*' : ' '} #${v.id} ${v.kind.padEnd(6)} ${v.version}  ${v.createdAt}  ${v.source}`,
          );
          context.output.out(`    ${formatDiff(v.diff)}`);
        }
      });
    });

  rules
    .command('update')
    .description('load, validate, store and apply the rule packs now (what the deliverability-update workflow does)')
    .option('--source <dirOrUrl>', 'instead of deliverability.source')
    .option('--json', 'print one JSON object')
    .action(async (options: { source?: string; json?: boolean }, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const result = await updateRulePacksNow(herald, options.source);
        if (options.json) return printJson(context, result);
        for (const kind of result.kinds) {
          const what =
            kind.outcome === 'updated'
              ? `now version ${kind.version} (#${kind.versionId}, was ${kind.previousVersion ?? 'none'}): ${formatDiff(kind.diff)}`
              : kind.outcome === 'repaired'
                ? `version ${kind.version} unchanged; ${kind.file} written again`
                : `unchanged (version ${kind.version})`;
          context.output.out(`${kind.kind} rules: ${what}`);
        }
      });
    });

  rules
    .command('rollback')
    .description('make the version the active one replaced active again, applied the same way')
    .requiredOption('--kind <kind>', 'mx or bounce')
    .option('--json', 'print one JSON object')
    .action(async (options: { kind: string; json?: boolean }, command: Command) => {
      const kind = parseKind(options.kind);
      await withHerald(context, command, async (herald) => {
        const result = await rollbackRulePack(
          { store: herald.store, config: herald.config, now: herald.clock.now() },
          kind,
        );
        if (options.json) return printJson(context, result);
        context.output.out(
          `${kind} rules: version ${result.to.version} (#${result.to.id}) active again, replacing ${result.from.version} (#${result.from.id}); written to ${result.file}`,
        );
        context.output.out(`    ${formatDiff(result.diff)}`);
      });
    });
}

function parseKind(value: string): RuleKind {
  if (value === 'mx' || value === 'bounce') return value;
  throw new AppError('INPUT_INVALID', `--kind: expected mx or bounce, got "${value}"`);
}
