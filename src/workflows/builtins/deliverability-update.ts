import { AppError } from '../../common/errors.ts';
import { formatDiff } from '../../rules-versions/diff.ts';
import { updateRulePacks } from '../../rules-versions/update.ts';
import { done, skipped, type WorkflowDefinition } from '../types.ts';

// The `deliverability-update` technical workflow (nightly): loads the MX-rule and bounce-rule packs
// from deliverability.source, validates them, stores each new content as a version and applies it
// atomically (docs/deliverability-update.md). `herald rules update` runs the same function now.

export const deliverabilityUpdateWorkflow: WorkflowDefinition = {
  name: 'deliverability-update',
  description: 'loads MX-rule and bounce-rule packs, validates, versions and applies them',
  schedule: '30 3 * * *',
  steps: [
    {
      name: 'update-rule-packs',
      async run(ctx) {
        const source = ctx.config.deliverability.source;
        if (!source)
          return skipped(
            'not configured: set deliverability.source to a directory or an https:// URL (docs/deliverability-update.md)',
          );
        let result;
        try {
          result = await updateRulePacks({ store: ctx.store, config: ctx.config, now: ctx.clock.now() }, source);
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
          for (const line of error.message.split('\n')) await ctx.log(line, 'error');
          return { kind: 'failed', error: `${error.code}: ${error.message}` };
        }
        for (const kind of result.kinds) {
          const what =
            kind.outcome === 'updated'
              ? `version ${kind.version} (#${kind.versionId}) active, replacing ${kind.previousVersion ?? 'none'}: ${formatDiff(kind.diff)}`
              : kind.outcome === 'repaired'
                ? `version ${kind.version} unchanged; ${kind.file} written again`
                : `unchanged (version ${kind.version})`;
          await ctx.log(`${kind.kind} rules: ${what}`);
        }
        return done(
          result.kinds
            .map((k) => `${k.kind} ${k.outcome === 'updated' ? `updated to ${k.version}` : k.outcome}`)
            .join(', '),
        );
      },
    },
  ],
};
