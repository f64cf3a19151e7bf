import {
  discardStagedWindow,
  failStaleImport,
  importsWithStagedRows,
  stagedSummary,
  staleImports,
} from '../../audience/audience-store.ts';
import { done, type StepDefinition } from '../types.ts';
import { inIdWindows } from './batches.ts';

// An import whose process was killed stays `running` with its staged rows (src/audience/csv-import.ts).
// A live import renews imports.updated_at with every batch it stages or applies, so one silent for
// workflows.cleanup.staleImportHours is over: it is failed with a message saying so, and its staged
// rows (which never reached the list, or only partly if it died while applying) are deleted.

const hour = 3_600_000;

/** The error recorded on an import taken for interrupted. */
export function interruptedImportError(lastProgressAt: number, staleImportHours: number): string {
  return (
    `interrupted: no progress since ${new Date(lastProgressAt).toISOString()} (over ${staleImportHours} h, workflows.cleanup.staleImportHours); ` +
    'the process importing it stopped. Run the import again: rows it had already applied are updated, not duplicated'
  );
}

export const failStaleImports: StepDefinition = {
  name: 'fail-stale-imports',
  async run(ctx) {
    const settings = ctx.config.workflows.cleanup;
    const { store } = ctx;
    const now = ctx.clock.now();
    const before = now - settings.staleImportHours * hour;
    let failed = 0;
    for (const stale of await staleImports(store, before)) {
      const error = interruptedImportError(stale.lastProgressAt, settings.staleImportHours);
      if (!(await failStaleImport(store, stale.id, { before, error, now }))) continue;
      failed += 1;
      await ctx.log(
        `import ${stale.id} (${stale.fileName}): no progress since ${new Date(stale.lastProgressAt).toISOString()}, failed as interrupted`,
        'warn',
      );
    }
    // Every import that is over, not only those failed above: a run stopped between failing an import
    // and deleting its rows leaves them to the next one.
    let rows = 0;
    let batches = 0;
    for (const importId of await importsWithStagedRows(store)) {
      const staged = await stagedSummary(store, importId);
      const totals = await inIdWindows(
        { min: staged.minId, max: staged.maxId },
        settings.batchSize,
        ctx.keepAlive,
        (from, to) => discardStagedWindow(store, importId, from, to),
      );
      rows += totals.rows;
      batches += totals.batches;
    }
    await ctx.log(
      `imports with no progress for ${settings.staleImportHours} h: ${failed} failed as interrupted; ${rows} staged rows deleted in ${batches} batches`,
    );
    return done(`${failed} imports failed as interrupted, ${rows} staged rows deleted`);
  },
};
