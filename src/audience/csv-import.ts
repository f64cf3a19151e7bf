import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { parse } from 'csv-parse';
import { systemClock, type Clock } from '../common/clock.ts';
import { AppError, describeError } from '../common/errors.ts';
import {
  applyStagedRange,
  createImport,
  discardStaged,
  failImport,
  failStaleImport,
  findList,
  findOrCreateList,
  sampleRecipientColumns,
  finishImport,
  renewImport,
  stagedRepeatsInBackground,
  stagedSummary,
  staleImports,
} from './audience-store.ts';
import { inTransaction, type Store } from '../store/database.ts';
import { newBatchRows, stageBatch, type NewReject } from './import-staging-store.ts';
import { createAddressValidator } from './address.ts';
import { decideRow, readHeader, type CsvHeader } from './csv-rows.ts';
import { createUtf8Guard } from './utf8-guard.ts';
import { checkListName } from './list-name.ts';
import { createLineCounter, csvFailure, csvOptions } from './csv-records.ts';
import { lazySqliteStatementRunner, type SqliteStatementRunner } from '../store/sqlite-statement-runner.ts';

// Streaming CSV import in two phases, so memory stays bounded and a failed import leaves the list
// exactly as it was:
//   1. read: the file streams through a UTF-8 check and the CSV parser; accepted rows go to the
//      import_rows staging table (duplicates in the file merged there, the later row winning) and
//      rejected rows to import_rejects, in batched transactions written while the next batch is
//      parsed (SQLite: by a writer thread; PostgreSQL: by the server, on its own core). Any failure
//      here (encoding, a record over the size limit, broken quoting, unreadable file) discards the
//      staged rows: the list is untouched and the import is recorded as failed with its error.
//   2. apply: staged rows move into recipients by id range, one short transaction per batch (upsert
//      on (list_id, email)), so other writers are never blocked for long. On PostgreSQL two
//      connections do this side by side, each for its share of the addresses. Meanwhile the file's
//      repeated addresses are read from a snapshot of the staged rows taken before the first range.
//      Only a database failure can stop this phase; re-running the same import then completes it
//      (the upsert is idempotent).
// Every batch of either phase renews the import's `updated_at` in its own transaction: an import
// whose process was killed stops doing so, and the cleanup workflow fails it after
// workflows.cleanup.staleImportHours (src/workflows/builtins/stale-imports.ts).

export interface ImportProgress {
  phase: 'reading' | 'applying';
  /** Data rows read so far (header excluded). */
  rows: number;
  bytes: number;
  totalBytes: number;
  /** Phase 2: staged rows moved to the list so far, out of `toApply`. */
  applied: number;
  toApply: number;
}

export interface ImportReject {
  line: number;
  reason: string;
  message: string;
}

export interface ImportSummary {
  importId: number;
  list: string;
  file: string;
  read: number;
  imported: number;
  updated: number;
  rejected: number;
  /** The first rejects, in line order; all of them are in import_rejects. */
  rejects: ImportReject[];
  /**
   * Rows that repeat an address of an earlier row of the file (case variants included): the later
   * row's data wins for an exact repeat; case variants stay as written and preparation sends once.
   */
  repeated: number;
  /** The first of them, in line order, with the line of the address's first row. */
  repeats: Array<{ line: number; email: string; firstLine: number }>;
  /**
   * Into a list that had recipients: its columns the file lacks (an updated recipient loses them: the
   * file's row replaces its data) and the file's columns it did not have. Empty for a new list.
   */
  columnsMissing: string[];
  columnsAdded: string[];
  elapsedMs: number;
}

export interface ImportRecipientsOptions {
  store: Store;
  file: string;
  list: string;
  maxFileBytes: number;
  maxRecordBytes: number;
  clock?: Clock;
  /**
   * Rows per staging transaction and per apply transaction. A staging batch also ends at
   * maxBatchBytes of rows: 5,000 records of 64 KiB would be 320 MB held at once.
   */
  batchSize?: number;
  /**
   * PostgreSQL: connections that apply staged rows side by side (the server then uses as many cores),
   * each for its share of the addresses. SQLite has one writer: always 1.
   */
  applyConnections?: number;
  /** How many rejects the summary carries. */
  rejectSample?: number;
  allowSmtpUtf8?: boolean;
  /** Bytes per read from the file (tests make it small to cross chunk boundaries). */
  chunkBytes?: number;
  /** Called once the header was read and the import recorded: its id (the API answers 202 with it). */
  onStarted?: (importId: number) => void;
  /** Called after each staged batch and each applied range; a returned promise is waited for before the next one. */
  onProgress?: (progress: ImportProgress) => void | Promise<void>;
  /** Aborted (Ctrl-C, SIGTERM): the import stops before its next batch, is failed and its staged rows deleted. */
  signal?: AbortSignal;
  /** Liveness lease (import.leaseSeconds): a running import not renewed for this long is failed by the next import. */
  leaseMs?: number;
}

/** Bytes of accepted rows after which a staging batch is written, whatever its row count. */
export const maxBatchBytes = 4 * 1024 * 1024;

export async function importRecipients(options: ImportRecipientsOptions): Promise<ImportSummary> {
  // SQLite: a writer thread stages each batch while the next one is parsed, and checkpoints the WAL
  // after each applied range (better-sqlite3 is synchronous: on the main connection both would stop
  // the parsing, and a checkpoint is a copy of every page written).
  const writer = lazySqliteStatementRunner(options.store);
  try {
    return await runImport(options, writer.get);
  } finally {
    await writer.close();
  }
}

async function runImport(
  options: ImportRecipientsOptions,
  writer: () => SqliteStatementRunner | undefined,
): Promise<ImportSummary> {
  const { store, file, clock = systemClock, batchSize = 5_000, rejectSample = 20, onProgress } = options;
  const started = clock.now();
  // Lists made before names were checked keep being imported into.
  if (!(await findList(store, options.list))) checkListName(options.list);
  const totalBytes = checkFile(file, options.maxFileBytes);
  const fileName = basename(file);

  const parser = parse(csvOptions(options.maxRecordBytes));
  // 64 KiB reads (Node's default): with 256 KiB, chunks waiting for the collector held up to 23 MB
  // outside the heap at the peak of a 1M-row import (bench/import.ts, peakExternalMb 26 → 5).
  const source = createReadStream(file, { highWaterMark: options.chunkBytes ?? 64 * 1024 });
  // Errors of any stage destroy the parser with that error, which the loop below then throws.
  pipeline(source, createUtf8Guard(fileName), parser, () => {});
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<string[]>;
  const lines = createLineCounter();
  const next = async (): Promise<{ record: string[]; line: number } | undefined> => {
    for (;;) {
      let record: string[] | undefined;
      try {
        const result = await records.next();
        record = result.done ? undefined : result.value;
      } catch (error) {
        throw await csvFailure(error, { file, maxRecordBytes: options.maxRecordBytes, lines });
      }
      if (record === undefined) return undefined;
      const line = lines.advance(record);
      if (record.length === 1 && record[0] === '') continue; // blank line
      return { record, line };
    }
  };

  const first = await next();
  if (!first)
    throw new AppError('CSV_NO_EMAIL_COLUMN', `${file} is empty: a header row with an "email" column is expected`, {
      details: { file },
    });
  const header = readHeader(first.record, file);

  const list = await findOrCreateList(store, options.list, clock.now());
  const columns = list.created
    ? { missing: [], added: [] }
    : compareColumns(await sampleRecipientColumns(store, list.id), header);
  const leaseMs = options.leaseMs ?? 60_000;
  await recoverDeadImports(store, clock.now(), leaseMs);
  const importId = await createImport(store, { listId: list.id, fileName, now: clock.now() });
  options.onStarted?.(importId);
  // The liveness lease, renewed by a timer as well as by each batch: an import whose process died is
  // recognised by the next import once the lease has run out, not hours later.
  const heartbeat = setInterval(
    () => void renewImport(store, importId, { read, rejected, now: clock.now() }).catch(() => {}),
    Math.max(1_000, leaseMs / 3),
  );
  heartbeat.unref();
  const validate = createAddressValidator({ allowSmtpUtf8: options.allowSmtpUtf8 ?? true });
  const sample: ImportReject[] = [];
  let read = 0;
  let rejected = 0;
  let rows = newBatchRows(store, importId);
  let rejects: NewReject[] = [];

  let inFlight: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    const batchRows = rows;
    const batchRejects = rejects;
    rows = newBatchRows(store, importId);
    rejects = [];
    // One batch is written while the next one is parsed (PostgreSQL works on the other core); waiting
    // for the previous write first keeps staged ids in file order, which "the later row wins" relies on.
    await inFlight;
    const progress: ImportProgress = {
      phase: 'reading',
      rows: read,
      bytes: source.bytesRead,
      totalBytes,
      applied: 0,
      toApply: 0,
    };
    inFlight = stageBatch(
      store,
      importId,
      { rows: batchRows, rejects: batchRejects, read, rejected, now: clock.now() },
      writer(),
    ).then((running) => {
      if (!running) throw interrupted(importId);
      return onProgress?.(progress);
    });
    inFlight.catch(() => {}); // surfaces at the next `await inFlight`
  };

  try {
    for (let row = await next(); row; row = await next()) {
      if (options.signal?.aborted) throw aborted(importId, 'reading');
      read++;
      const { line } = row;
      const decision = decideRow(row.record, header, validate);
      if (decision.kind === 'accepted') {
        rows.add(line, decision.email, decision.domain, decision.data);
      } else {
        rejected++;
        rejects.push({ line, reason: decision.reason, message: decision.message, excerpt: decision.excerpt });
        if (sample.length < rejectSample) sample.push({ line, reason: decision.reason, message: decision.message });
      }
      if (rows.count + rejects.length >= batchSize || rows.size >= maxBatchBytes) await flush();
      // Records come from the parser's buffer without a turn of the event loop, ~1,000 per 64 KiB read:
      // a turn every few hundred lets the staging write in flight make progress (on PostgreSQL, each of
      // its round trips waited for the next read: 2.9 s of waiting per million rows).
      else if (read % 250 === 0) await yieldToEventLoop();
    }
    await flush();
    await inFlight;
  } catch (error) {
    clearInterval(heartbeat);
    await inFlight.catch(() => {});
    await abandon(store, importId, { read, rejected, error, now: clock.now() });
    throw error;
  }

  // The repeated addresses (a sort of every staged row) are read from a snapshot taken now, by
  // another thread or connection, while the ranges are applied (which deletes staged rows).
  const runner = writer();
  const { repeats: repeatsRead } = await stagedRepeatsInBackground(store, importId, rejectSample, runner);
  repeatsRead.catch(() => {}); // awaited once the rows are applied
  const parts = store.dialect === 'postgres' ? Math.max(1, Math.floor(options.applyConnections ?? 2)) : 1;
  const counts = await applyStaged(store, {
    heartbeat,
    importId,
    listId: list.id,
    batchSize,
    parts,
    read,
    rejected,
    clock,
    onProgress,
    totalBytes,
    signal: options.signal,
    writer: runner,
  });
  clearInterval(heartbeat);
  const repeats = await repeatsRead.catch((error: unknown) => error as Error);
  // Every row is in the list by now: the import is finished whether or not its report can be made.
  await finishImport(store, importId, counts, clock.now());
  if (repeats instanceof Error)
    throw new AppError(
      'INTERNAL',
      `import ${importId} finished (the list is complete), but its repeated addresses could not be read: ${describeError(repeats)}`,
      { cause: repeats, details: { importId } },
    );
  return {
    importId,
    list: list.name,
    file,
    ...counts,
    rejects: sample,
    repeated: repeats.count,
    repeats: repeats.rows,
    columnsMissing: columns.missing,
    columnsAdded: columns.added,
    elapsedMs: clock.now() - started,
  };
}

/** The list's columns (from one of its recipients) against the file's, email aside. */
function compareColumns(listColumns: string[] | undefined, header: CsvHeader): { missing: string[]; added: string[] } {
  if (listColumns === undefined) return { missing: [], added: [] };
  const fileColumns = header.columns.filter((_, index) => index !== header.emailIndex);
  return {
    missing: listColumns.filter((name) => !fileColumns.includes(name)),
    added: fileColumns.filter((name) => !listColumns.includes(name)),
  };
}

function checkFile(file: string, maxFileBytes: number): number {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new AppError('CSV_UNREADABLE', `${file} is not a regular file`, { details: { file } });
    size = stat.size;
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError(
      'CSV_UNREADABLE',
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`,
      { cause: error, details: { file } },
    );
  }
  if (size > maxFileBytes) {
    throw new AppError(
      'CSV_TOO_LARGE',
      `${file} is ${size} bytes, over import.maxFileBytes (${maxFileBytes}); split it or raise the limit`,
      { details: { file, size } },
    );
  }
  return size;
}

/** The cleanup workflow failed this import while it ran: it had made no progress for hours. */
function interrupted(importId: number): AppError {
  return new AppError(
    'INVALID_STATE',
    `import ${importId} was failed by the cleanup workflow while running, having recorded no progress for longer than workflows.cleanup.staleImportHours; run the import again`,
    {
      details: { importId, interrupted: true },
    },
  );
}

/** Stopped by a signal: the import is failed and its staged rows deleted (rows already applied stay). */
function aborted(importId: number, phase: 'reading' | 'applying'): AppError {
  return new AppError(
    'INTERRUPTED',
    `import ${importId} interrupted while ${phase}: failed, its staged rows deleted${phase === 'applying' ? ' (the ranges already applied to the list stay)' : ''}; run it again`,
    { details: { importId } },
  );
}

/** Running imports whose lease ran out belong to dead processes: failed, their staged rows deleted. */
async function recoverDeadImports(store: Store, now: number, leaseMs: number): Promise<void> {
  const before = now - leaseMs;
  for (const dead of await staleImports(store, before)) {
    const error = `interrupted: its process stopped renewing its lease (last at ${new Date(dead.lastProgressAt).toISOString()}, import.leaseSeconds ${Math.round(leaseMs / 1000)}); failed by the next import. Run it again: rows it had already applied are updated, not duplicated`;
    if (await failStaleImport(store, dead.id, { before, error, now })) await discardStaged(store, dead.id);
  }
}

function isInterrupted(error: unknown): boolean {
  return error instanceof AppError && error.details.interrupted === true;
}

/**
 * PostgreSQL empties import_rows (an unlogged table) when it restarts after a crash. Connections
 * break then, which stops the import; this check makes sure that no import ever finishes with rows
 * missing, whatever the timing.
 */
function lostStagedRows(found: number, expected: number): void {
  if (found !== expected)
    throw new Error(
      `${expected} staged rows were expected and ${found} found: were they deleted, or did the database restart?`,
    );
}

async function abandon(
  store: Store,
  importId: number,
  failure: { read: number; rejected: number; error: unknown; now: number },
): Promise<void> {
  await discardStaged(store, importId);
  await failImport(store, importId, {
    read: failure.read,
    rejected: failure.rejected,
    error: describeError(failure.error),
    now: failure.now,
  });
}

interface ApplyInput {
  importId: number;
  listId: number;
  batchSize: number;
  parts: number;
  read: number;
  rejected: number;
  clock: Clock;
  totalBytes: number;
  onProgress: ImportRecipientsOptions['onProgress'];
  signal?: AbortSignal | undefined;
  /** Cleared when applying fails (the import is then over). */
  heartbeat: NodeJS.Timeout;
  /** SQLite: checkpoints the WAL after each applied range, on its own thread. */
  writer?: SqliteStatementRunner | undefined;
}

async function applyStaged(
  store: Store,
  input: ApplyInput,
): Promise<{ read: number; imported: number; updated: number; rejected: number }> {
  const { importId, listId, batchSize, parts, read, rejected, clock, onProgress, totalBytes } = input;
  const { count: staged, minId, maxId } = await stagedSummary(store, importId);
  let imported = 0;
  let applied = 0;
  let failure: { error: unknown } | undefined;
  // Reports are made one at a time, in order, whichever part finished a range.
  let reported = Promise.resolve();
  const report = (): Promise<void> => {
    const progress: ImportProgress = {
      phase: 'applying',
      rows: read,
      bytes: totalBytes,
      totalBytes,
      applied,
      toApply: staged,
    };
    reported = reported.then(() => onProgress?.(progress));
    return reported;
  };
  // Each part walks every range in id order, applying the rows of its addresses: an address's rows all
  // fall in one part, so the later row of the file still wins.
  const applyPart = async (index: number): Promise<void> => {
    for (let from = minId - 1; staged > 0 && from < maxId && !failure; from += batchSize) {
      if (input.signal?.aborted) throw aborted(importId, 'applying');
      const to = Math.min(from + batchSize, maxId);
      const now = clock.now();
      const range = await inTransaction(store, async (trx) => {
        const result = await applyStagedRange(trx, {
          importId,
          listId,
          fromId: from,
          toId: to,
          now,
          part: { index, count: parts },
        });
        // The heartbeat last: parts running side by side then hold the import's row only while committing.
        if (!(await renewImport(trx, importId, { read, rejected, now }))) throw interrupted(importId);
        return result;
      });
      imported += range.written - range.existing;
      applied += range.staged;
      // Not waited for: the next range is applied meanwhile (a passive checkpoint never blocks it).
      input.writer?.checkpoint().catch(() => {});
      await report();
    }
  };
  try {
    // Every progress report follows a heartbeat, this one too.
    if (!(await renewImport(store, importId, { read, rejected, now: clock.now() }))) throw interrupted(importId);
    lostStagedRows(staged, read - rejected);
    await report();
    await Promise.all(
      Array.from({ length: parts }, (_, index) =>
        applyPart(index).catch((error: unknown) => {
          failure ??= { error }; // the other parts stop before their next range
        }),
      ),
    );
    if (failure) throw failure.error;
    lostStagedRows(applied, staged);
  } catch (error) {
    clearInterval(input.heartbeat);
    if (isInterrupted(error)) throw error;
    if (error instanceof AppError && error.code === 'INTERRUPTED') {
      await abandon(store, importId, { read, rejected, error, now: clock.now() });
      throw error;
    }
    const wrapped = new AppError(
      'INTERNAL',
      `import ${importId} failed while applying to the list; run the same import again to complete it: ${describeError(error)}`,
      { cause: error },
    );
    await abandon(store, importId, { read, rejected, error: wrapped, now: clock.now() }).catch(() => {});
    throw wrapped;
  }
  // Every accepted row either adds a recipient or updates one: already in the list, or added by an
  // earlier row of the same file.
  return { read, imported, updated: read - rejected - imported, rejected };
}
