// Pure: how much of a PostgreSQL btree index is dead space, estimated from catalog statistics only
// (pgstattuple is an extension that is rarely installed). The estimate follows the btree page
// layout: 8 kB pages, 24-byte page header, 16-byte btree special area, and per entry a 4-byte line
// pointer plus an 8-byte tuple header and the key, aligned to 8 bytes.

export interface IndexBloatInput {
  bytes: number;
  tuples: number;
  keyWidth: number;
  fillFactor: number;
  pageSize?: number;
}

export function estimateIndexBloat(input: IndexBloatInput): { expectedBytes: number; bloatRatio: number } {
  const pageSize = input.pageSize ?? 8192;
  const usable = (pageSize - 24 - 16) * (input.fillFactor / 100);
  const entryBytes = 4 + 8 + Math.ceil(Math.max(1, input.keyWidth) / 8) * 8;
  const perPage = Math.max(1, Math.floor(usable / entryBytes));
  // +1 for the metapage; inner pages add about 1/perPage more.
  const leafPages = Math.ceil(Math.max(0, input.tuples) / perPage);
  const pages = 1 + leafPages + Math.ceil(leafPages / perPage);
  const expectedBytes = pages * pageSize;
  const bloatRatio = input.bytes <= 0 ? 0 : Math.max(0, 1 - expectedBytes / input.bytes);
  return { expectedBytes, bloatRatio: Math.round(bloatRatio * 1000) / 1000 };
}

export function shouldReindex(
  input: IndexBloatInput,
  settings: { reindexBloatRatio: number; reindexMinBytes: number },
): boolean {
  if (input.bytes < settings.reindexMinBytes) return false;
  return estimateIndexBloat(input).bloatRatio >= settings.reindexBloatRatio;
}
