import type { RuleKind, RuleVersionRow } from '../store/tables.ts';
import type { RuleDiff } from './diff.ts';

/** A stored rule-pack version as `herald rules versions --json` and the API show it. */
export function ruleVersionView(row: Omit<RuleVersionRow, 'content'>) {
  return {
    id: row.id,
    kind: row.kind as RuleKind,
    version: row.version,
    active: row.active === 1,
    source: row.source,
    replacesId: row.replaces_id,
    createdAt: new Date(row.created_at).toISOString(),
    activatedAt: row.activated_at === null ? null : new Date(row.activated_at).toISOString(),
    diff: JSON.parse(row.diff) as RuleDiff,
  };
}
