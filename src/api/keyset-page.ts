// A keyset page is read with one row more than asked: `next` (the key of its last row) is null when
// no row follows. Read with exactly `limit` rows, an exactly full last page had a `next` that led a
// client to one more request for an empty page, where docs/api.md promises null on the last one.

/** The number of rows to read for a page of `limit`. */
export function rowsToRead(limit: number): number {
  return limit + 1;
}

/** The page of at most `limit` of `rows` (read with rowsToRead) and the key of the following one. */
export function keysetPage<T extends { id: number }>(
  rows: readonly T[],
  limit: number,
): { rows: T[]; next: number | null } {
  const page = rows.slice(0, limit);
  return { rows: page, next: rows.length > limit ? page[limit - 1]!.id : null };
}
