import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { importRecipients, type ImportProgress, type ImportSummary } from '../audience/csv-import.ts';
import { AppError } from '../common/errors.ts';
import { getImport, listRejects } from '../audience/audience-store.ts';
import { interruptible, positiveInteger, printJson, withHerald, type CliContext } from './context.ts';

// `herald import recipients FILE --list NAME` and `herald import rejects IMPORT_ID`.

/** Receives import progress; the default draws a bar on stderr when it is a terminal. */
export interface ProgressDisplay {
  update(progress: ImportProgress): void;
  stop(): void;
}

export interface ImportCommandSeams {
  progress?: () => ProgressDisplay | undefined;
}

const shownRejects = 20;
const rejectsPage = 1_000;

export function registerImportCommands(program: Command, context: CliContext, seams: ImportCommandSeams = {}): void {
  const group = program
    .command('import')
    .description('import audiences: recipients from CSV, and the rows an import rejected');

  group
    .command('recipients')
    .description(
      'import a UTF-8 CSV (header row with an email column; other columns become personalization data) into a list',
    )
    .argument('<file>', 'CSV file')
    .requiredOption('--list <name>', 'the list to import into (created if missing)')
    .option(
      '--json',
      'print one JSON object: {"importId","list","file","read","imported","updated","rejected","rejects":[{"line","reason","message"}],"repeated","repeats":[{"line","email","firstLine"}],"columnsMissing","columnsAdded","elapsedMs"}',
    )
    .action(async (file: string, options: { list: string; json?: boolean }, command: Command) => {
      await withHerald(
        context,
        command,
        async (herald) => {
          const display = (
            seams.progress ??
            (() =>
              terminalProgress() ??
              lineProgress(
                (line) => context.output.err(line),
                () => Date.now(),
              ))
          )();
          let summary: ImportSummary;
          try {
            summary = await interruptible(context, (signal) =>
              importRecipients({
                signal,
                store: herald.store,
                file,
                list: options.list,
                clock: herald.clock,
                maxFileBytes: herald.config.import.maxFileBytes,
                maxRecordBytes: herald.config.import.maxRecordBytes,
                leaseMs: herald.config.import.leaseSeconds * 1000,
                rejectSample: shownRejects,
                onProgress: display ? (progress) => display.update(progress) : undefined,
              }),
            );
          } finally {
            display?.stop();
          }
          if (options.json) printJson(context, summary);
          else printSummary(context, summary);
        },
        { create: true },
      );
    });

  group
    .command('rejects')
    .description('list every row an import rejected, with its line number, reason and the start of the row')
    .argument('<importId>', 'the import id printed by herald import recipients')
    .option('--json', 'NDJSON: {"line","reason","message","excerpt"} per rejected row')
    .action(async (id: string, options: { json?: boolean }, command: Command) => {
      const importId = positiveInteger(id, 'import id');
      await withHerald(context, command, async (herald) => {
        const record = await getImport(herald.store, importId);
        if (!record) throw new AppError('NOT_FOUND', `no import ${importId}`);
        if (!options.json) {
          const error = record.error ? ` (${record.error})` : '';
          context.output.out(
            `import ${importId} of ${record.file_name} into list "${record.list_name}": ${record.state}${error}, ${record.rejected_count} rejected rows`,
          );
        }
        // Paged, so a file with 100,000 rejects is never held in memory at once.
        for (let afterId = 0; ; ) {
          const page = await listRejects(herald.store, importId, { afterId, limit: rejectsPage });
          for (const reject of page) {
            if (options.json)
              printJson(context, {
                line: reject.line,
                reason: reject.reason,
                message: reject.message,
                excerpt: reject.excerpt,
              });
            else
              context.output.out(`line ${reject.line}: ${reject.reason}: ${reject.message ?? ''} | ${reject.excerpt}`);
          }
          if (page.length < rejectsPage) break;
          afterId = page[page.length - 1]?.id ?? afterId;
        }
      });
    });
}

function printSummary(context: CliContext, summary: ImportSummary): void {
  const seconds = (summary.elapsedMs / 1000).toFixed(1);
  context.output.out(`import ${summary.importId}: ${summary.file} into list "${summary.list}" in ${seconds} s`);
  context.output.out(
    `read ${summary.read}, imported ${summary.imported}, updated ${summary.updated}, rejected ${summary.rejected}`,
  );
  if (summary.columnsMissing.length > 0)
    context.output.out(
      `warning: the list's recipients have column(s) ${summary.columnsMissing.join(', ')} that this file lacks: the ${summary.updated} recipient(s) it updated lost them (the file's row replaces their data) and the ${summary.imported} it added lack them (a template printing them fails preparation)${summary.columnsAdded.length > 0 ? `; the file brings new column(s) ${summary.columnsAdded.join(', ')}: renamed?` : ''}`,
    );
  if (summary.repeated > 0) {
    context.output.out(`${summary.repeated} row(s) repeat an address of an earlier row (case ignored):`);
    for (const repeat of summary.repeats)
      context.output.out(`  line ${repeat.line}: ${repeat.email} (first on line ${repeat.firstLine})`);
    const more = summary.repeated - summary.repeats.length;
    if (more > 0) context.output.out(`  … ${more} more`);
  }
  if (summary.rejected === 0) return;
  context.output.out('rejected rows:');
  for (const reject of summary.rejects)
    context.output.out(`  line ${reject.line}: ${reject.reason}: ${reject.message}`);
  const more = summary.rejected - summary.rejects.length;
  if (more > 0) context.output.out(`  … ${more} more, see herald import rejects ${summary.importId}`);
}

/** Where an import stands: bytes read in the reading phase, rows moved to the list in the applying one. */
function doneOutOf(progress: ImportProgress): [number, number] {
  return progress.phase === 'reading' ? [progress.bytes, progress.totalBytes] : [progress.applied, progress.toApply];
}

/**
 * Progress as lines when stderr is not a terminal (a log file, a pipe, cron): a 1M-row import said
 * nothing for its whole run. One line at each phase's start, then at most one every `everyMs`.
 */
export function lineProgress(write: (line: string) => void, now: () => number, everyMs = 10_000): ProgressDisplay {
  let phase: ImportProgress['phase'] | undefined;
  let writtenAt = 0;
  return {
    update(progress) {
      const at = now();
      if (progress.phase === phase && at - writtenAt < everyMs) return;
      phase = progress.phase;
      writtenAt = at;
      const [value, total] = doneOutOf(progress);
      const percent = total > 0 ? Math.floor((value / total) * 100) : 100;
      write(`import: ${progress.phase} ${percent}% (${progress.rows} rows read)`);
    },
    stop() {},
  };
}

function terminalProgress(): ProgressDisplay | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: '{phase} |{bar}| {percentage}% | {rows} rows',
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let phase: ImportProgress['phase'] | undefined;
  return {
    update(progress) {
      const [value, total] = doneOutOf(progress);
      if (phase === undefined) bar.start(Math.max(total, 1), value, { phase: progress.phase, rows: progress.rows });
      else if (phase !== progress.phase) bar.setTotal(Math.max(total, 1));
      phase = progress.phase;
      bar.update(value, { phase: progress.phase === 'reading' ? 'reading ' : 'applying', rows: progress.rows });
    },
    stop: () => bar.stop(),
  };
}
