import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';

const now = Date.parse('2026-09-01T12:00:00Z');
let fills = 0;

describeEachDialect('herald db', (context) => {
  const cli = () => {
    const lines: string[] = [];
    const cliContext: CliContext = {
      output: { out: (line) => lines.push(line), err: () => {} },
      open: () =>
        openHerald({
          config: parseConfig({ database: { url: context.url() } }, 'test'),
          logger: silentLogger,
          clock: manualClock(now),
        }),
    };
    return { lines, run: (...args: string[]) => runCli(['node', 'herald', ...args], cliContext) };
  };

  async function fillAndEmptyRejects(rows: number): Promise<void> {
    const store = context.store();
    const list = await store.db
      .insertInto('lists')
      .values({ name: `db-fill-${(fills += 1)}`, created_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    const imported = await store.db
      .insertInto('imports')
      .values({
        list_id: list.id,
        file_name: 'a.csv',
        state: 'finished',
        read_count: 0,
        imported_count: 0,
        updated_count: 0,
        rejected_count: 0,
        error: null,
        started_at: now,
        finished_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (let i = 0; i < rows; i += 1_000) {
      await store.db
        .insertInto('import_rejects')
        .values(
          Array.from({ length: 1_000 }, (_, j) => ({
            import_id: imported.id,
            line: i + j,
            reason: 'invalid',
            excerpt: 'x'.repeat(200),
            created_at: now,
          })),
        )
        .execute();
    }
    await store.db.deleteFrom('import_rejects').where('id', '>', 0).execute();
  }

  it('reports rows, sizes, dead space and index sizes per table, and the last maintenance', async () => {
    const store = context.store();
    await fillAndEmptyRejects(5_000);
    await store.db.insertInto('lists').values({ name: 'kept', created_at: now }).execute();

    const before = cli();
    expect(await before.run('db', 'status', '--json')).toBe(0);
    const status = JSON.parse(before.lines[0]!);
    expect(status).toMatchObject({ dialect: context.dialect, lastMaintenance: null });
    expect(status.sizeBytes).toBeGreaterThan(0);
    const names = status.tables.map((t: { name: string }) => t.name);
    expect(names).toEqual(expect.arrayContaining(['delivery_logs', 'deliveries', 'workflow_runs', 'import_rejects']));
    const deliveryLogs = status.tables.find((t: { name: string }) => t.name === 'delivery_logs');
    expect(deliveryLogs.indexes.map((i: { name: string }) => i.name)).toEqual(
      expect.arrayContaining(['delivery_logs_due', 'delivery_logs_updated']),
    );
    for (const key of [
      'rows',
      'rowsEstimated',
      'tableBytes',
      'indexBytes',
      'indexToTableRatio',
      'deadRows',
      'bloatRatio',
      'lastVacuumAt',
      'lastAnalyzeAt',
    ]) {
      expect(deliveryLogs).toHaveProperty(key);
    }
    if (context.dialect === 'sqlite') {
      expect(status.tables.find((t: { name: string }) => t.name === 'lists')).toMatchObject({
        rows: 2,
        rowsEstimated: false,
      });
      // The deleted rejects left free pages for new rows to reuse.
      expect(status.freelistPages).toBeGreaterThan(0);
      expect(status.autoVacuum).toBe('none');
    } else {
      expect(deliveryLogs.rowsEstimated).toBe(true);
      expect(status.freelistPages).toBeNull();
    }

    const maintain = cli();
    expect(await maintain.run('db', 'maintain', '--json')).toBe(0);
    const summary = JSON.parse(maintain.lines[0]!);
    expect(summary.dialect).toBe(context.dialect);
    if (context.dialect === 'postgres')
      expect(summary.vacuumed).toEqual(expect.arrayContaining(['delivery_logs', 'import_rejects']));

    const after = cli();
    expect(await after.run('db', 'status', '--json')).toBe(0);
    const later = JSON.parse(after.lines[0]!);
    expect(later.lastMaintenance).toMatchObject({ source: 'cli', error: null });
    if (context.dialect === 'postgres') {
      const rejects = later.tables.find((t: { name: string }) => t.name === 'import_rejects');
      expect(rejects.deadRows).toBe(0);
      expect(rejects.lastVacuumAt).not.toBeNull();
    }

    const text = cli();
    expect(await text.run('db', 'status')).toBe(0);
    expect(text.lines.some((l) => /^TABLE\s+ROWS\s+TABLE SIZE/.test(l))).toBe(true);
  });

  it.runIf(context.dialect === 'sqlite')(
    'SQLite: --convert switches to incremental auto-vacuum and the file shrinks',
    async () => {
      await fillAndEmptyRejects(5_000);
      const convert = cli();
      expect(await convert.run('db', 'maintain', '--convert', '--json')).toBe(0);
      const converted = JSON.parse(convert.lines[0]!);
      expect(converted).toMatchObject({ autoVacuum: 'incremental', freelistPagesAfter: 0 });
      expect(converted.fileBytesAfter).toBeLessThan(converted.fileBytesBefore);

      // From now on, the nightly maintenance hands freed pages back in chunks.
      await fillAndEmptyRejects(5_000);
      const freed = await sql<{ n: number }>`PRAGMA freelist_count`.execute(context.store().db);
      expect(Number(Object.values(freed.rows[0]!)[0])).toBeGreaterThan(0);
      const nightly = cli();
      expect(await nightly.run('db', 'maintain', '--json')).toBe(0);
      const result = JSON.parse(nightly.lines[0]!);
      expect(result.vacuumChunks).toBeGreaterThan(0);
      expect(result.freelistPagesAfter).toBe(0);
      expect(result.fileBytesAfter).toBeLessThan(result.fileBytesBefore);
    },
  );
});
