import { open, stat } from 'node:fs/promises';
import type { BounceClassifier } from '../bounce/classifier.ts';
import { DEFAULT_READ_LIMITS } from '../bounce/mime-reader.ts';
import { parseBounceMessages } from '../bounce/parse-bounce.ts';
import type { ParsedBounce } from '../bounce/parsed-bounce.ts';
import { reportLinesForMessages, type BounceReportLine } from '../bounce/report-lines.ts';
import { AppError } from '../common/errors.ts';

// Reading bounce files for `herald bounce classify` and `herald bounce evaluate`: size-limited,
// parsed (never throws on bad content), one report line per recipient.

/** Reads a file; anything over `maxBytes` is reported by size without being read. */
export async function readLimited(path: string, maxBytes: number): Promise<Uint8Array | { tooLarge: number }> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw new AppError(
      'NOT_FOUND',
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      { cause: error },
    );
  }
  if (!info.isFile()) throw new AppError('NOT_FOUND', `cannot read ${path}: not a regular file`);
  if (info.size > maxBytes) return { tooLarge: info.size };
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(info.size);
    const { bytesRead } = await handle.read(buffer, 0, info.size, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The report lines of one bounce file; throws AppError NOT_FOUND when it cannot be read. */
export async function classifyBounceFile(path: string, classifier: BounceClassifier): Promise<BounceReportLine[]> {
  const raw = await readLimited(path, DEFAULT_READ_LIMITS.maxBytes);
  const parsed: ParsedBounce[] =
    'tooLarge' in raw
      ? [
          {
            kind: 'unparseable',
            format: 'none',
            recipients: [],
            original: {},
            error: `message of ${raw.tooLarge} bytes is over the ${DEFAULT_READ_LIMITS.maxBytes}-byte limit`,
          },
        ]
      : await parseBounceMessages(raw);
  return reportLinesForMessages(path, parsed, classifier);
}
