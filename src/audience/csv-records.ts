import { createReadStream } from 'node:fs';
import { CsvError, parse, type Options } from 'csv-parse';
import { AppError, describeError } from '../common/errors.ts';

// How the import reads CSV records: csv-parse's options, the physical line of each record, and the
// translation of a parse failure into an error naming the file and the line to look at.

/**
 * Column counts are checked per row (a wrong count is a reject, not a fatal error as with
 * relax_column_count off). Rows may end in CRLF, LF or CR, even mixed in one file. Line numbers are
 * counted by createLineCounter rather than with `info: true`, which costs an object per record and
 * miscounts.
 */
export function csvOptions(maxRecordBytes: number): Options {
  return {
    bom: true,
    relax_column_count: true,
    record_delimiter: ['\r\n', '\n', '\r'],
    max_record_size: maxRecordBytes,
  };
}

export interface LineCounter {
  /** The line of `record`, the record that follows the previous one. */
  advance(record: string[]): number;
  /** The line the next record starts on. */
  next(): number;
  /** Lines csv-parse counted twice so far (a CRLF inside a field). */
  excess(): number;
}

/**
 * Physical line numbers: each record starts on the line after the previous one ended, and spans the
 * line breaks inside its quoted fields (CRLF, CR or LF, each one line). csv-parse's own counter, used
 * in its error messages, counts a CRLF inside a field as two lines; `excess` corrects for that.
 */
export function createLineCounter(): LineCounter {
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
    next: () => nextLine,
    excess: () => excess,
  };
}

/**
 * The lines of the records before a failing one, counted by parsing the file again up to it. Only on
 * failure: the records the import had not taken yet from the parser are dropped with its error, so
 * the import's own count stops short of the failing record.
 */
async function countLinesBefore(file: string, records: number, maxRecordBytes: number): Promise<LineCounter> {
  const lines = createLineCounter();
  if (records <= 0) return lines;
  const source = createReadStream(file);
  const parser = source.pipe(parse({ ...csvOptions(maxRecordBytes), to: records }));
  try {
    for await (const record of parser) lines.advance(record as string[]);
  } finally {
    source.destroy();
  }
  return lines;
}

/**
 * A failure of the parsing stages as an AppError naming the file and the line. csv-parse names the line
 * it had reached when it gave up, counting a CRLF inside a quoted field as two: with a quote left open
 * at line 2 of a million-row file, the line where the record outgrew import.maxRecordBytes (2825) or the
 * last line of the file. The operator has to look where that record starts.
 */
export async function csvFailure(
  error: unknown,
  context: { file: string; maxRecordBytes: number; lines: LineCounter },
): Promise<AppError> {
  const { file, maxRecordBytes } = context;
  if (error instanceof AppError) return error;
  if (!(error instanceof CsvError))
    return new AppError('CSV_UNREADABLE', `cannot read ${file}: ${describeError(error)}`, {
      cause: error,
      details: { file },
    });
  const { lines: reported = 0, records = 0 } = error as CsvError & { lines?: number; records?: number };
  const before = await countLinesBefore(file, records, maxRecordBytes).catch(() => context.lines);
  const start = before.next();
  const line = Math.max(start, reported - before.excess());
  if (error.code === 'CSV_MAX_RECORD_SIZE')
    return new AppError(
      'CSV_TOO_LARGE',
      `${file}: the record starting at line ${start} is over import.maxRecordBytes (${maxRecordBytes} bytes)${line > start ? ` by line ${line}` : ''}; is a quote left open?`,
      { cause: error, details: { file, line: start } },
    );
  if (error.code === 'CSV_QUOTE_NOT_CLOSED')
    return new AppError(
      'CSV_UNREADABLE',
      `${file}: line ${start}: a quote opened in the record starting there is never closed (the file ends inside it)`,
      { cause: error, details: { file, line: start } },
    );
  // csv-parse's message names its own (uncorrected) line; keep only the description.
  const what = error.message.replace(/,? (at|on) line \d+/g, '');
  return new AppError('CSV_UNREADABLE', `${file}: line ${line}: ${what}`, { cause: error, details: { file, line } });
}
