import type { Command } from 'commander';
import { backupDatabase } from '../workflows/db-backup.ts';
import { checkDatabase, type DatabaseCheck } from '../workflows/db-check.ts';
import { databaseStatus, type DatabaseStatus } from '../workflows/db-status.ts';
import { runMaintenance } from '../workflows/maintenance.ts';
import { CliExit, printJson, withHerald, type CliContext } from './context.ts';

// `herald db status|maintain|check|backup`: table and index sizes, dead space, the maintenance the cleanup
// workflow runs nightly, on demand, whether the file is sound, and an online copy of it.

export function registerDbCommands(program: Command, context: CliContext): void {
  const db = program.command('db').description('database space and maintenance');

  db.command('status')
    .description('per table: rows, size, dead rows / bloat estimate, index sizes; last maintenance')
    .option('--json', 'print one JSON object')
    .action(async (options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const status = await databaseStatus(herald.store);
        if (options.json) printJson(context, status);
        else for (const line of formatStatus(status)) context.output.out(line);
      });
    });

  db.command('check')
    .description(
      'is the database sound? SQLite: quick_check of every page (--full: integrity_check, indexes too); PostgreSQL: data checksums and the failures met (exit 1 on damage)',
    )
    .option('--full', 'SQLite: integrity_check, which also compares every index with its table (slower)')
    .option('--json', 'print one JSON object')
    .action(async (options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const check = await checkDatabase(herald.store, { full: Boolean(options.full) });
        if (options.json) printJson(context, check);
        else for (const line of formatCheck(check)) context.output.out(line);
        if (!check.ok) throw new CliExit(1);
      });
    });

  db.command('backup')
    .description('SQLite: copy the database to FILE while Herald runs (consistent, compacted, checked)')
    .argument('<file>', 'the new file (never overwritten)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        const backup = await backupDatabase(herald.store, file);
        if (options.json) printJson(context, backup);
        else context.output.out(`${backup.file}: ${mb(backup.bytes)} in ${backup.seconds} s, checked`);
      });
    });

  db.command('maintain')
    .description(
      'run the database maintenance now (SQLite: ANALYZE, incremental vacuum; PostgreSQL: VACUUM (ANALYZE), REINDEX of bloated indexes)',
    )
    .option(
      '--convert',
      'SQLite: switch the file to incremental auto-vacuum with one full VACUUM (blocks writers while it runs)',
    )
    .option('--json', 'print the maintenance summary as JSON')
    .action(async (options, command: Command) => {
      await withHerald(context, command, async (herald) => {
        // Each step as it starts (a VACUUM can take hours); with --json on stderr, stdout keeps the one object.
        const log = async (message: string) => {
          if (options.json) context.output.err(message);
          else context.output.out(message);
        };
        const summary = await runMaintenance(
          herald.store,
          herald.config,
          herald.clock,
          { log, keepAlive: async () => {} },
          { source: 'cli', convertSqlite: Boolean(options.convert) },
        );
        if (options.json) printJson(context, summary);
        else context.output.out('maintenance done');
      });
    });
}

function formatCheck(check: DatabaseCheck): string[] {
  const head = `${check.dialect} ${check.location}: ${check.method} in ${check.seconds} s`;
  if (check.ok && check.dataChecksums === false)
    return [
      `${head}: no failure recorded, but data checksums are off: PostgreSQL cannot detect damaged pages (initdb --data-checksums, or pg_checksums --enable on a stopped cluster)`,
    ];
  if (check.ok) return [`${head}: sound`];
  return [
    `${head}: DAMAGED (${check.problems.length} problem${check.problems.length === 1 ? '' : 's'} listed)`,
    ...check.problems.map((problem) => `  ${problem}`),
    check.dialect === 'sqlite'
      ? 'stop every Herald process using it and keep a copy of it as it is; then restore the last backup or recover it (docs/database.md, "A damaged SQLite file")'
      : "the server's log names the damaged relation at each checksum failure: REINDEX a damaged index; for a table, restore from a backup",
  ];
}

function formatStatus(status: DatabaseStatus): string[] {
  const lines = [`${status.dialect} ${status.location}: ${mb(status.sizeBytes)}`];
  if (status.freelistPages !== null)
    lines.push(`free pages: ${status.freelistPages} (${mb(status.freeBytes ?? 0)}), auto_vacuum ${status.autoVacuum}`);
  const rows = [['TABLE', 'ROWS', 'TABLE SIZE', 'INDEX SIZE', 'IDX/TABLE', 'DEAD ROWS', 'BLOAT']];
  for (const t of status.tables) {
    rows.push([
      t.name,
      `${t.rowsEstimated ? '~' : ''}${t.rows}`,
      mb(t.tableBytes),
      mb(t.indexBytes),
      t.indexToTableRatio === null ? '-' : t.indexToTableRatio.toFixed(2),
      t.deadRows === null ? '-' : String(t.deadRows),
      t.bloatRatio === null ? '-' : `${Math.round(t.bloatRatio * 100)}%`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  lines.push(
    ...rows.map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    ),
  );
  const m = status.lastMaintenance;
  lines.push(
    !m
      ? 'last maintenance: never'
      : m.state === 'interrupted'
        ? `maintenance interrupted at ${m.step}, started ${m.startedAt} (${m.source}; its process ${m.owner} is gone, last progress ${m.finishedAt}): \`herald db maintain\` runs it again`
        : m.state === 'running'
          ? `maintenance running at ${m.step}, started ${m.startedAt} (${m.source}, process ${m.owner}, last progress ${m.finishedAt})`
          : `last maintenance: ${m.finishedAt} (${m.source}, ${m.durationMs} ms${m.error ? `, failed at ${m.step}: ${m.error}` : ''})`,
  );
  return lines;
}

function mb(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} kB`;
}
