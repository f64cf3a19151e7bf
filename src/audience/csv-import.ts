import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import { CsvError, parse } from 'csv-parse';
import { systemClock, type Clock } from '../common/clock.ts';
import { AppError, describeError } from '../common/errors.ts';
import {
  applyStagedRange,
  createImport,
  discardStaged,
  failImport,
  findOrCreateList,
  finishImport,
  stageRows,
  stagedSummary,
  type NewReject,
  type StagedRow,
} from '../store/audience-queries.ts';
import type { Store } from '../store/database.ts';
import { createAddressValidator } from './address.ts';
import { decideRow, readHeader, type CsvHeader } from './csv-rows.ts';
import { createUtf8Guard } from './utf8-guard.ts';

// Streaming CSV import in two phases, so memory stays bounded and a failed import leaves the list
// exactly as it was:
//   1. read: the file streams through a UTF-8 check and the CSV parser; accepted rows go to the
//      import_rows staging table (duplicates in the file merged there, the later row winning) and
//      rejected rows to import_rejects, in batched transactions. Any failure here (encoding, a record
//      over the size limit, broken quoting, unreadable file) discards the staged rows: the list is
//      untouched and the import is recorded as failed with its error.
//   2. apply: staged rows move into recipients by id range, one short transaction per batch (upsert
//      on (list_id, email)), so other writers are never blocked for long. Only a database failure can
//      stop this phase; re-running the same import then completes it (the upsert is idempotent).

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
  elapsedMs: number;
}

export interface ImportRecipientsOptions {
  store: Store;
  file: string;
  list: string;
  maxFileBytes: number;
  maxRecordBytes: number;
  clock?: Clock;
  /** Rows per staging transaction and per apply transaction. */
  batchSize?: number;
  /** How many rejects the summary carries. */
  rejectSample?: number;
  allowSmtpUtf8?: boolean;
  /** Bytes per read from the file (tests make it small to cross chunk boundaries). */
  chunkBytes?: number;
  onProgress?: (progress: ImportProgress) => void;
}

export async function importRecipients(options: ImportRecipientsOptions): Promise<ImportSummary> {
  const { store, file, clock = systemClock, batchSize = 5_000, rejectSample = 20, onProgress } = options;
  const db = store.db;
  const started = clock.now();
  const totalBytes = checkFile(file, options.maxFileBytes);
  const fileName = basename(file);

  // Column counts are checked per row (a wrong count is a reject, not a fatal error as with
  // relax_column_count off). Rows may end in CRLF, LF or CR, even mixed in one file. Line numbers are
  // counted here rather than with `info: true`, which costs an object per record and miscounts.
  const parser = parse({ bom: true, relax_column_count: true, record_delimiter: ['\r\n', '\n', '\r'], max_record_size: options.maxRecordBytes });
  const source = createReadStream(file, { highWaterMark: options.chunkBytes ?? 256 * 1024 });
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
        throw toAppError(error, file, options.maxRecordBytes, lines.excess());
      }
      if (record === undefined) return undefined;
      const line = lines.advance(record);
      if (record.length === 1 && record[0] === '') continue; // blank line
      return { record, line };
    }
  };

  const first = await next();
  if (!first) throw new AppError('CSV_NO_EMAIL_COLUMN', `${file} is empty: a header row with an "email" column is expected`, { details: { file } });
  const header = readHeader(first.record, file);

  const list = await findOrCreateList(db, options.list, clock.now());
  const importId = await createImport(db, { listId: list.id, fileName, now: clock.now() });
  const validate = createAddressValidator({ allowSmtpUtf8: options.allowSmtpUtf8 ?? true });
  const sample: ImportReject[] = [];
  let read = 0;
  let rejected = 0;
  let rows: StagedRow[] = [];
  let rejects: NewReject[] = [];

  let inFlight: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    const batchRows = rows;
    const batchRejects = rejects;
    rows = [];
    rejects = [];
    // One batch is written while the next one is parsed (PostgreSQL works on the other core); waiting
    // for the previous write first keeps staged ids in file order, which "the later row wins" relies on.
    await inFlight;
    const progress: ImportProgress = { phase: 'reading', rows: read, bytes: source.bytesRead, totalBytes, applied: 0, toApply: 0 };
    inFlight = db
      .transaction()
      .execute((trx) => stageRows(trx, store.dialect, importId, batchRows, batchRejects, clock.now()))
      .then(() => onProgress?.(progress));
    inFlight.catch(() => {}); // surfaces at the next `await inFlight`
  };

  try {
    for (let row = await next(); row; row = await next()) {
      read++;
      const { line } = row;
      const decision = decideRow(row.record, header, validate);
      if (decision.kind === 'accepted') {
        rows.push({ line, email: decision.email, domain: decision.domain, data: decision.data });
      } else {
        rejected++;
        rejects.push({ line, reason: decision.reason, message: decision.message, excerpt: decision.excerpt });
        if (sample.length < rejectSample) sample.push({ line, reason: decision.reason, message: decision.message });
      }
      if (rows.length + rejects.length >= batchSize) await flush();
    }
    await flush();
    await inFlight;
  } catch (error) {
    await inFlight.catch(() => {});
    await abandon(store, importId, { read, rejected, error, now: clock.now() });
    throw error;
  }

  const counts = await applyStaged(store, { importId, listId: list.id, batchSize, read, rejected, clock, onProgress, totalBytes });
  await finishImport(db, importId, counts, clock.now());
  return { importId, list: list.name, file, ...counts, rejects: sample, elapsedMs: clock.now() - started };
}

function checkFile(file: string, maxFileBytes: number): number {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new AppError('CSV_UNREADABLE', `${file} is not a regular file`, { details: { file } });
    size = stat.size;
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('CSV_UNREADABLE', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? describeError(error)}`, { cause: error, details: { file } });
  }
  if (size > maxFileBytes) {
    throw new AppError('CSV_TOO_LARGE', `${file} is ${size} bytes, over import.maxFileBytes (${maxFileBytes}); split it or raise the limit`, { details: { file, size } });
  }
  return size;
}

function toAppError(error: unknown, file: string, maxRecordBytes: number, excessLines: number): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof CsvError) {
    const reported = (error as CsvError & { lines?: number }).lines ?? 0;
    const line = reported - excessLines;
    if (error.code === 'CSV_MAX_RECORD_SIZE') {
      return new AppError('CSV_TOO_LARGE', `${file}: the record at line ${line} is over import.maxRecordBytes (${maxRecordBytes} bytes); is a quote left open?`, {
        cause: error,
        details: { file, line },
      });
    }
    // csv-parse's message names its own (uncorrected) line; keep only the description.
    const what = error.message.replace(/,? (at|on) line \d+/g, '');
    return new AppError('CSV_UNREADABLE', `${file}: line ${line}: ${what}`, { cause: error, details: { file, line } });
  }
  return new AppError('CSV_UNREADABLE', `cannot read ${file}: ${describeError(error)}`, { cause: error, details: { file } });
}

/**
 * Physical line numbers: each record starts on the line after the previous one ended, and spans the
 * line breaks inside its quoted fields (CRLF, CR or LF, each one line). csv-parse's own counter, used
 * in its error messages, counts a CRLF inside a field as two lines; `excess` corrects for that.
 */
export function createLineCounter(): { advance(record: string[]): number; excess(): number } {
  let nextLine = 1;
  let excess = 0;
  return {
    advance(record) {
      const line = nextLine;
      let breaks = 0;
      for (const field of record) {
        if (!field.includes('\n') && !field.includes('\r')) continue;
        for (let i = 0; i < field.length; i++) {
          const c = field.charCodeAt(i);
          if (c === 10) breaks++;
          else if (c === 13) {
            breaks++;
            if (field.charCodeAt(i + 1) === 10) {
              excess++;
              i++;
            }
          }
        }
      }
      nextLine += 1 + breaks;
      return line;
    },
    excess: () => excess,
  };
}

async function abandon(store: Store, importId: number, failure: { read: number; rejected: number; error: unknown; now: number }): Promise<void> {
  await discardStaged(store.db, importId);
  await failImport(store.db, importId, { read: failure.read, rejected: failure.rejected, error: describeError(failure.error), now: failure.now });
}

interface ApplyInput {
  importId: number;
  listId: number;
  batchSize: number;
  read: number;
  rejected: number;
  clock: Clock;
  totalBytes: number;
  onProgress: ImportRecipientsOptions['onProgress'];
}

async function applyStaged(store: Store, input: ApplyInput): Promise<{ read: number; imported: number; updated: number; rejected: number }> {
  const { importId, listId, batchSize, read, rejected, clock, onProgress, totalBytes } = input;
  const { count: staged, minId, maxId } = await stagedSummary(store.db, importId);
  let imported = 0;
  let applied = 0;
  try {
    for (let from = minId - 1; staged > 0 && from < maxId; from += batchSize) {
      const to = Math.min(from + batchSize, maxId);
      const { written, existing } = await applyStagedRange(store.db, store.dialect, { importId, listId, fromId: from, toId: to, now: clock.now() });
      imported += written - existing;
      applied = Math.min(staged, applied + (to - from));
      onProgress?.({ phase: 'applying', rows: read, bytes: totalBytes, totalBytes, applied, toApply: staged });
    }
  } catch (error) {
    const failure = new AppError('INTERNAL', `import ${importId} failed while applying to the list; run the same import again to complete it: ${describeError(error)}`, { cause: error });
    await abandon(store, importId, { read, rejected, error: failure, now: clock.now() }).catch(() => {});
    throw failure;
  }
  // Every accepted row either adds a recipient or updates one: already in the list, or added by an
  // earlier row of the same file.
  return { read, imported, updated: read - rejected - imported, rejected };
}
