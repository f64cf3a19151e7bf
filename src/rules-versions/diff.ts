import { parse } from 'yaml';
import type { RuleKind } from '../store/tables.ts';

// What a new version changes, by rule name (MX), backoff name, rule id (bounce) and mapping entry,
// so an operator reading `herald rules versions` sees "3 changed: google, yahoo, backoff:421" rather
// than two hashes. Pure: both texts are packs that already validated.

export interface RuleDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

export function diffPacks(kind: RuleKind, previousText: string | undefined, nextText: string): RuleDiff {
  const before = entriesOf(kind, previousText);
  const after = entriesOf(kind, nextText);
  const diff: RuleDiff = { added: [], removed: [], changed: [] };
  for (const [key, value] of after) {
    const old = before.get(key);
    if (old === undefined) diff.added.push(key);
    else if (old !== value) diff.changed.push(key);
  }
  for (const key of before.keys()) if (!after.has(key)) diff.removed.push(key);
  return diff;
}

export function formatDiff(diff: RuleDiff): string {
  const part = (label: string, names: string[]) =>
    names.length === 0
      ? []
      : [`${names.length} ${label} (${names.slice(0, 10).join(', ')}${names.length > 10 ? ', …' : ''})`];
  const parts = [...part('added', diff.added), ...part('removed', diff.removed), ...part('changed', diff.changed)];
  return parts.length === 0 ? 'no rule changed (comments or layout only)' : parts.join(', ');
}

function entriesOf(kind: RuleKind, text: string | undefined): Map<string, string> {
  const entries = new Map<string, string>();
  if (text === undefined) return entries;
  let data: Record<string, unknown>;
  try {
    data = (parse(text) ?? {}) as Record<string, unknown>;
  } catch {
    return entries;
  }
  const list = (key: string): Array<Record<string, unknown>> =>
    Array.isArray(data[key]) ? (data[key] as Array<Record<string, unknown>>) : [];
  const map = (key: string): Record<string, unknown> =>
    data[key] && typeof data[key] === 'object' ? (data[key] as Record<string, unknown>) : {};
  if (kind === 'mx') {
    for (const rule of list('rules')) entries.set(String(rule.name), stable(rule));
    for (const rule of list('backoff')) entries.set(`backoff:${String(rule.name)}`, stable(rule));
  } else {
    for (const rule of list('rules')) entries.set(String(rule.id), stable(rule));
    for (const [category, reason] of Object.entries(map('categories')))
      entries.set(`category:${category}`, stable(reason));
    for (const [reason, type] of Object.entries(map('types'))) entries.set(`type:${reason}`, stable(type));
    const disabled = Array.isArray(data.disable) ? data.disable : data.disable === undefined ? [] : [data.disable];
    for (const id of disabled) entries.set(`disable:${String(id)}`, 'true');
  }
  return entries;
}

/** JSON with sorted keys: key order in YAML is not a change. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
