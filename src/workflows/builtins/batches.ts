// Bounded batches: each call of `work` is one short transaction; between them the step yields
// (keepAlive), so other writers (the MTA) get the database in between and the lease stays fresh.

export interface BatchTotals {
  rows: number;
  batches: number;
}

/** Walks [min, max] in windows of `size` ids: every transaction touches at most `size` rows. */
export async function inIdWindows(
  range: { min: number; max: number } | undefined,
  size: number,
  keepAlive: () => Promise<void>,
  work: (from: number, to: number) => Promise<number>,
): Promise<BatchTotals> {
  const totals: BatchTotals = { rows: 0, batches: 0 };
  if (!range) return totals;
  for (let from = range.min; from <= range.max; from += size) {
    totals.rows += await work(from, from + size);
    totals.batches += 1;
    await keepAlive();
  }
  return totals;
}

/** Repeats `work` (which handles at most one batch and returns how many rows) until it returns 0. */
export async function untilEmpty(keepAlive: () => Promise<void>, work: () => Promise<number>): Promise<BatchTotals> {
  const totals: BatchTotals = { rows: 0, batches: 0 };
  for (;;) {
    const rows = await work();
    totals.batches += 1;
    if (rows === 0) return totals;
    totals.rows += rows;
    await keepAlive();
  }
}
