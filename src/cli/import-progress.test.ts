import { describe, expect, it } from 'vitest';
import type { ImportProgress } from '../audience/csv-import.ts';
import { lineProgress } from './import-command.ts';

const reading = (rows: number, bytes: number): ImportProgress => ({
  phase: 'reading',
  rows,
  bytes,
  totalBytes: 1_000,
  applied: 0,
  toApply: 0,
});

describe('import progress as lines (stderr not a terminal)', () => {
  it('writes at each phase start, then at most one line per interval', () => {
    const lines: string[] = [];
    let now = 0;
    const display = lineProgress(
      (line) => lines.push(line),
      () => now,
      10_000,
    );
    display.update(reading(0, 0));
    now = 5_000;
    display.update(reading(500, 400));
    now = 10_000;
    display.update(reading(1_200, 950));
    now = 10_500;
    display.update({ phase: 'applying', rows: 1_300, bytes: 1_000, totalBytes: 1_000, applied: 0, toApply: 1_300 });
    now = 12_000;
    display.update({ phase: 'applying', rows: 1_300, bytes: 1_000, totalBytes: 1_000, applied: 650, toApply: 1_300 });
    expect(lines).toEqual([
      'import: reading 0% (0 rows read)',
      'import: reading 95% (1200 rows read)',
      'import: applying 0% (1300 rows read)',
    ]);
  });
});
