import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { importRecipients, type ImportProgress } from '../src/audience/csv-import.ts';
import { manualClock } from '../src/common/clock.ts';
import { AppError } from '../src/common/errors.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import {
  applyStagedRange,
  createImport,
  findOrCreateList,
  getImport,
  renewImport,
  stagedSummary,
} from '../src/audience/audience-store.ts';
import { inTransaction, type Store } from '../src/store/database.ts';
import { newBatchRows, stageBatch, type BatchRows } from '../src/audience/import-staging-store.ts';
import { listStepLogs } from '../src/workflows/workflow-store.ts';
import { createWorkflowEngine } from '../src/workflows/engine.ts';
import { manualTicker } from '../src/workflows/ticker.ts';
import { describeEachDialect } from './support/databases.ts';

// Imports whose process died stay `running` with their staged rows; the cleanup workflow fails them
// once they have made no progress for workflows.cleanup.staleImportHours (6 h by default).

const hour = 3_600_000;
const dir = mkdtempSync(join(tmpdir(), 'herald-import-stale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function csv(name: string, rows: number): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `email,n\n${Array.from({ length: rows }, (_, i) => `${name.replace('.csv', '')}${i}@example.com,${i}\n`).join('')}`,
  );
  return file;
}

/** Rows `from` to `to` (excluded) of a file, as the importer stages them. */
function staged(store: Store, importId: number, prefix: string, from: number, to: number): BatchRows {
  const rows = newBatchRows(store, importId);
  for (let i = from; i < to; i++) rows.add(i + 2, `${prefix}${i}@example.com`, 'example.com', `{"n":"${i}"}`);
  return rows;
}

async function listEmails(store: Store, list: string): Promise<string[]> {
  const rows = await store.db
    .selectFrom('recipients')
    .innerJoin('lists', 'lists.id', 'recipients.list_id')
    .select('recipients.email')
    .where('lists.name', '=', list)
    .orderBy('recipients.email')
    .execute();
  return rows.map((row) => row.email);
}

async function stagedCount(store: Store, importId: number): Promise<number> {
  return (await stagedSummary(store, importId)).count;
}

describeEachDialect('stale imports', (context) => {
  const config = parseConfig({}, 'test');
  const engineAt = (clock: ReturnType<typeof manualClock>) =>
    createWorkflowEngine({
      store: context.store(),
      config,
      clock,
      logger: silentLogger,
      nodeId: 'node-a',
      ticker: manualTicker,
    });
  const cleanup = async (clock: ReturnType<typeof manualClock>) => {
    const run = await engineAt(clock).runNow('cleanup');
    expect(run).toMatchObject({ status: 'succeeded', error: null });
    const messages = (await listStepLogs(context.store(), run.runId)).map((log) => log.message);
    return messages.filter((message) => message.startsWith('import') && !message.startsWith('import rejects'));
  };

  it('fails imports whose process died (while reading or applying) and deletes their staged rows; a recent one is left alone', async () => {
    const store = context.store();
    const start = Date.parse('2026-06-01T00:00:00Z');
    const clock = manualClock(start);
    const list = await findOrCreateList(store, 'stale', clock.now());

    // Killed while reading: two batches staged, then nothing.
    const reading = await createImport(store, { listId: list.id, fileName: 'reading.csv', now: clock.now() });
    await stageBatch(store, reading, {
      rows: staged(store, reading, 'reading', 0, 3),
      rejects: [{ line: 5, reason: 'missing_at', message: 'no @', excerpt: 'x' }],
      read: 4,
      rejected: 1,
      now: clock.now(),
    });
    clock.advance(30 * 60_000);
    expect(
      await stageBatch(store, reading, {
        rows: staged(store, reading, 'reading', 3, 6),
        rejects: [],
        read: 7,
        rejected: 1,
        now: clock.now(),
      }),
    ).toBe(true);

    // Killed while applying: the first range reached the list, the rest is still staged.
    clock.set(start + hour);
    const applying = await createImport(store, { listId: list.id, fileName: 'applying.csv', now: clock.now() });
    await stageBatch(store, applying, {
      rows: staged(store, applying, 'applying', 0, 4),
      rejects: [],
      read: 4,
      rejected: 0,
      now: clock.now(),
    });
    const { minId } = await stagedSummary(store, applying);
    await inTransaction(store, async (trx) => {
      expect(await renewImport(trx, applying, { read: 4, rejected: 0, now: clock.now() })).toBe(true);
      await applyStagedRange(trx, {
        importId: applying,
        listId: list.id,
        fromId: minId - 1,
        toId: minId + 1,
        now: clock.now(),
      });
    });

    // Still in progress: its last batch is 2 hours old when the cleanup runs.
    clock.set(start + 5 * hour);
    const recent = await createImport(store, { listId: list.id, fileName: 'recent.csv', now: clock.now() });
    await stageBatch(store, recent, {
      rows: staged(store, recent, 'recent', 0, 1),
      rejects: [],
      read: 1,
      rejected: 0,
      now: clock.now(),
    });

    clock.set(start + 7 * hour + 60_000);
    expect(await cleanup(clock)).toEqual(
      [
        'import 1 (reading.csv): no progress since 2026-06-01T00:30:00.000Z, failed as interrupted',
        'import 2 (applying.csv): no progress since 2026-06-01T01:00:00.000Z, failed as interrupted',
        'imports with no progress for 6 h: 2 failed as interrupted; 8 staged rows deleted in 2 batches',
      ].map((line) => line.replace('import 1 ', `import ${reading} `).replace('import 2 ', `import ${applying} `)),
    );

    expect(await getImport(store, reading)).toMatchObject({
      state: 'failed',
      read_count: 7,
      rejected_count: 1,
      imported_count: 0,
      finished_at: start + 7 * hour + 60_000,
    });
    const failed = await getImport(store, applying);
    expect(failed?.error).toBe(
      'interrupted: no progress since 2026-06-01T01:00:00.000Z (over 6 h, workflows.cleanup.staleImportHours); the process importing it stopped. ' +
        'Run the import again: rows it had already applied are updated, not duplicated',
    );
    expect(await stagedCount(store, reading)).toBe(0);
    expect(await stagedCount(store, applying)).toBe(0);
    // Nothing of the import killed while reading reached the list; the applied range stays.
    expect(await listEmails(store, 'stale')).toEqual(['applying0@example.com', 'applying1@example.com']);
    expect(await getImport(store, recent)).toMatchObject({ state: 'running', error: null });
    expect(await stagedCount(store, recent)).toBe(1);

    // A failed import takes no more batches (were its process only stuck, it stops at its next one).
    expect(
      await stageBatch(store, reading, {
        rows: staged(store, reading, 'reading', 6, 7),
        rejects: [],
        read: 8,
        rejected: 1,
        now: clock.now(),
      }),
    ).toBe(false);
    expect(await stagedCount(store, reading)).toBe(0);
    expect(await cleanup(clock)).toEqual([
      'imports with no progress for 6 h: 0 failed as interrupted; 0 staged rows deleted in 0 batches',
    ]);

    // Six hours after its last batch, the recent one is over too.
    clock.set(start + 11 * hour + 60_000);
    expect(await cleanup(clock)).toEqual([
      `import ${recent} (recent.csv): no progress since 2026-06-01T05:00:00.000Z, failed as interrupted`,
      'imports with no progress for 6 h: 1 failed as interrupted; 1 staged rows deleted in 1 batches',
    ]);
  });

  it('never takes an import in progress for stale: each batch renews it, even with cleanups 5 hours apart', async () => {
    const clock = manualClock(Date.parse('2026-07-01T00:00:00Z'));
    const phases: string[] = [];
    const summary = await importRecipients({
      store: context.store(),
      file: csv('live.csv', 7),
      list: 'live',
      clock,
      maxFileBytes: 1024 * 1024,
      maxRecordBytes: 1024,
      batchSize: 2,
      // One apply connection, so that each report follows its own batch's heartbeat: 5 hours pass per batch.
      applyConnections: 1,
      onProgress: async (progress) => {
        clock.advance(5 * hour);
        phases.push(`${progress.phase} ${progress.phase === 'reading' ? progress.rows : progress.applied}`);
        expect(await cleanup(clock)).toEqual([
          'imports with no progress for 6 h: 0 failed as interrupted; 0 staged rows deleted in 0 batches',
        ]);
      },
    });
    expect(phases).toEqual([
      'reading 2',
      'reading 4',
      'reading 6',
      'reading 7',
      'applying 0',
      'applying 2',
      'applying 4',
      'applying 6',
      'applying 7',
    ]);
    expect(summary).toMatchObject({ read: 7, imported: 7, updated: 0, rejected: 0 });
    expect(await getImport(context.store(), summary.importId)).toMatchObject({ state: 'finished', error: null });
    expect(await listEmails(context.store(), 'live')).toHaveLength(7);
  });

  it.each([
    ['reading', (p: ImportProgress) => p.phase === 'reading' && p.rows === 2, [] as string[]],
    [
      'applying',
      (p: ImportProgress) => p.phase === 'applying' && p.applied === 2,
      ['applying-list0@example.com', 'applying-list1@example.com'],
    ],
  ])(
    'an import failed as interrupted while %s stops at its next batch and keeps that error',
    async (phase, when, inList) => {
      const clock = manualClock(Date.parse('2026-08-01T00:00:00Z'));
      const list = `${phase}-list`;
      let importId = 0;
      const error = await importRecipients({
        store: context.store(),
        file: csv(`${list}.csv`, 5),
        list,
        clock,
        maxFileBytes: 1024 * 1024,
        maxRecordBytes: 1024,
        batchSize: 2,
        applyConnections: 1,
        onProgress: async (progress) => {
          if (!when(progress)) return;
          clock.advance(7 * hour); // as if the process had hung for 7 hours
          expect(await cleanup(clock)).toHaveLength(2);
          importId = Number(
            (
              await context
                .store()
                .db.selectFrom('imports')
                .select('id')
                .where('file_name', '=', `${list}.csv`)
                .executeTakeFirstOrThrow()
            ).id,
          );
        },
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('INVALID_STATE');
      expect((error as AppError).message).toBe(
        `import ${importId} was failed by the cleanup workflow while running, having recorded no progress for longer than workflows.cleanup.staleImportHours; run the import again`,
      );
      const record = await getImport(context.store(), importId);
      expect(record?.state).toBe('failed');
      expect(record?.error).toMatch(/^interrupted: no progress since /);
      expect(await stagedCount(context.store(), importId)).toBe(0);
      expect(await listEmails(context.store(), list)).toEqual(inList);
    },
  );
});
