import { AppError } from '../common/errors.ts';
import type { Store } from '../store/database.ts';
import type { RuleKind, RuleVersionRow } from '../store/tables.ts';

// Rule-pack versions (migration 0009): the deliverability-update workflow stores each accepted pack
// content once, with its diff against the version it replaced, and switches `active` in one
// transaction. Rollback walks `replaces_id` back.

export async function getActiveVersion(store: Store, kind: RuleKind): Promise<RuleVersionRow | undefined> {
  return store.db
    .selectFrom('rule_versions')
    .selectAll()
    .where('kind', '=', kind)
    .where('active', '=', 1)
    .executeTakeFirst();
}

export async function getVersion(store: Store, id: number): Promise<RuleVersionRow | undefined> {
  return store.db.selectFrom('rule_versions').selectAll().where('id', '=', id).executeTakeFirst();
}

/** Newest first, without content. */
export async function listVersions(
  store: Store,
  options: { kind?: RuleKind; limit?: number } = {},
): Promise<Array<Omit<RuleVersionRow, 'content'>>> {
  let query = store.db
    .selectFrom('rule_versions')
    .select(['id', 'kind', 'version', 'source', 'diff', 'replaces_id', 'active', 'created_at', 'activated_at'])
    .orderBy('id', 'desc')
    .limit(options.limit ?? 100);
  if (options.kind) query = query.where('kind', '=', options.kind);
  return query.execute();
}

export async function insertVersion(
  store: Store,
  row: Omit<RuleVersionRow, 'id' | 'active' | 'activated_at'>,
): Promise<number> {
  const inserted = await store.db
    .insertInto('rule_versions')
    .values({ ...row, active: 0, activated_at: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(inserted.id);
}

/**
 * Compare-and-swap of the active version of `kind`: `expectedActiveId` must still be active (or,
 * when undefined, none may be). Call inside a transaction; a concurrent switch is an INVALID_STATE.
 */
export async function switchActiveVersion(
  store: Store,
  kind: RuleKind,
  expectedActiveId: number | undefined,
  nextId: number,
  now: number,
): Promise<void> {
  if (expectedActiveId === undefined) {
    const any = await store.db
      .selectFrom('rule_versions')
      .select('id')
      .where('kind', '=', kind)
      .where('active', '=', 1)
      .executeTakeFirst();
    if (any) throw concurrent(kind);
  } else {
    const result = await store.db
      .updateTable('rule_versions')
      .set({ active: 0 })
      .where('id', '=', expectedActiveId)
      .where('active', '=', 1)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) throw concurrent(kind);
  }
  await store.db.updateTable('rule_versions').set({ active: 1, activated_at: now }).where('id', '=', nextId).execute();
}

/** Deletes the oldest versions of `kind` beyond `keep`, never the active one or what it replaces. */
export async function pruneVersions(store: Store, kind: RuleKind, keep: number): Promise<number> {
  const active = await getActiveVersion(store, kind);
  const protectedIds = [active?.id, active?.replaces_id].filter((id): id is number => typeof id === 'number');
  const kept = await store.db
    .selectFrom('rule_versions')
    .select('id')
    .where('kind', '=', kind)
    .orderBy('id', 'desc')
    .limit(keep)
    .execute();
  const oldestKept = kept.at(-1)?.id;
  if (kept.length < keep || oldestKept === undefined) return 0;
  let query = store.db.deleteFrom('rule_versions').where('kind', '=', kind).where('id', '<', oldestKept);
  if (protectedIds.length > 0) query = query.where('id', 'not in', protectedIds);
  const result = await query.executeTakeFirst();
  return Number(result.numDeletedRows);
}

function concurrent(kind: RuleKind): AppError {
  return new AppError(
    'INVALID_STATE',
    `the active ${kind} rule version changed while this update ran (another update or rollback); run it again`,
  );
}
