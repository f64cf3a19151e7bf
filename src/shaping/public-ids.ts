// Public ids select which source addresses a rule applies to: one id (`3`), a range (`"1-4"`),
// a comma list (`"1-4,7"`) or a YAML list of those. An empty selection means every id.

export interface PublicIdRange {
  from: number;
  to: number;
}

export type PublicIdSpec = number | string | Array<number | string>;

const maxPublicId = 1_000_000;

/** Parses a publicIds value; returns an error message instead of throwing. */
export function parsePublicIds(spec: PublicIdSpec | undefined): { ranges: PublicIdRange[] } | { error: string } {
  if (spec === undefined) return { ranges: [] };
  const parts = Array.isArray(spec) ? spec : [spec];
  const ranges: PublicIdRange[] = [];
  for (const part of parts) {
    const pieces =
      typeof part === 'number'
        ? [String(part)]
        : part
            .split(',')
            .map((p) => p.trim())
            .filter((p) => p !== '');
    for (const piece of pieces) {
      const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(piece);
      if (!match) return { error: `expected a public id, a range like "1-4" or a list of them (got "${piece}")` };
      const from = Number(match[1]);
      const to = match[2] === undefined ? from : Number(match[2]);
      if (to < from) return { error: `range "${piece}" ends before it starts` };
      if (to > maxPublicId) return { error: `public id ${to} is over ${maxPublicId}` };
      ranges.push({ from, to });
    }
  }
  // Empty means every id only when absent: `[]` or "" (a template that filled in nothing) gave a rule
  // meant for a few addresses to all of them.
  if (ranges.length === 0) return { error: 'names no public id: leave publicIds out for every public id' };
  return { ranges };
}

export function publicIdSelected(ranges: readonly PublicIdRange[], publicId: number): boolean {
  if (ranges.length === 0) return true;
  for (const range of ranges) if (publicId >= range.from && publicId <= range.to) return true;
  return false;
}

export function formatPublicIds(ranges: readonly PublicIdRange[]): string {
  if (ranges.length === 0) return 'all';
  return ranges.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(',');
}
