import type { Generated, Kysely, Selectable } from 'kysely';
import { AppError } from '../common/errors.ts';
import type { Store } from './database.ts';
import type { Database } from './tables.ts';

// Rule-pack versions (migration 0009): the deliverability-update workflow stores each accepted pack
// content once, with its diff against the version it replaced, and switches `active` in one
// transaction. Rollback walks `replaces_id` back.

export type RuleKind = 'mx' | 'bounce';

export interface RuleVersionTable {
  id: Generated<number>;
  kind: RuleKind;
  /** Short content hash (sha256, 16 hex). */
  version: string;
  content: string;
  /** The file or URL it was loaded from. */
  source: string;
  /** JSON: { added, removed, changed } names against the version it replaced. */
  diff: string;
  /** The version that was active when this one was created (what rollback returns to). */
  replaces_id: number | null;
  active: number;
  created_at: number;
  activated_at: number | null;
}

export type RuleVersionTables = { rule_versions: RuleVersionTable };
export type RuleVersionRow = Selectable<RuleVersionTable>;
export type RuleVersionDb = Kysely<Database & RuleVersionTables>;

export function ruleVersionsDb(store: Store): RuleVersionDb {
  return store.db.withTables<RuleVersionTables>();
}

export async function getActiveVersion(db: RuleVersionDb, kind: RuleKind): Promise<RuleVersionRow | undefined> {
  return db.selectFrom('rule_versions').selectAll().where('kind', '=', kind).where('active', '=', 1).executeTakeFirst();
}

export async function getVersion(db: RuleVersionDb, id: number): Promise<RuleVersionRow | undefined> {
  return db.selectFrom('rule_versions').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Newest first, without content. */
export async function listVersions(db: RuleVersionDb, options: { kind?: RuleKind; limit?: number } = {}): Promise<Array<Omit<RuleVersionRow, 'content'>>> {
  let query = db
    .selectFrom('rule_versions')
    .select(['id', 'kind', 'version', 'source', 'diff', 'replaces_id', 'active', 'created_at', 'activated_at'])
    .orderBy('id', 'desc')
    .limit(options.limit ?? 100);
  if (options.kind) query = query.where('kind', '=', options.kind);
  return query.execute();
}

export async function insertVersion(db: RuleVersionDb, row: Omit<RuleVersionRow, 'id' | 'active' | 'activated_at'>): Promise<number> {
  const inserted = await db.insertInto('rule_versions').values({ ...row, active: 0, activated_at: null }).returning('id').executeTakeFirstOrThrow();
  return Number(inserted.id);
}

/**
 * Compare-and-swap of the active version of `kind`: `expectedActiveId` must still be active (or,
 * when undefined, none may be). Call inside a transaction; a concurrent switch is an INVALID_STATE.
 */
export async function switchActiveVersion(db: RuleVersionDb, kind: RuleKind, expectedActiveId: number | undefined, nextId: number, now: number): Promise<void> {
  if (expectedActiveId === undefined) {
    const any = await db.selectFrom('rule_versions').select('id').where('kind', '=', kind).where('active', '=', 1).executeTakeFirst();
    if (any) throw concurrent(kind);
  } else {
    const result = await db.updateTable('rule_versions').set({ active: 0 }).where('id', '=', expectedActiveId).where('active', '=', 1).executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) throw concurrent(kind);
  }
  await db.updateTable('rule_versions').set({ active: 1, activated_at: now }).where('id', '=', nextId).execute();
}

/** Deletes the oldest versions of `kind` beyond `keep`, never the active one or what it replaces. */
export async function pruneVersions(db: RuleVersionDb, kind: RuleKind, keep: number): Promise<number> {
  const active = await getActiveVersion(db, kind);
  const protectedIds = [active?.id, active?.replaces_id].filter((id): id is number => typeof id === 'number');
  const kept = await db.selectFrom('rule_versions').select('id').where('kind', '=', kind).orderBy('id', 'desc').limit(keep).execute();
  const oldestKept = kept.at(-1)?.id;
  if (kept.length < keep || oldestKept === undefined) return 0;
  let query = db.deleteFrom('rule_versions').where('kind', '=', kind).where('id', '<', oldestKept);
  if (protectedIds.length > 0) query = query.where('id', 'not in', protectedIds);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

function concurrent(kind: RuleKind): AppError {
  return new AppError('INVALID_STATE', `the active ${kind} rule version changed while this update ran (another update or rollback); run it again`);
}
