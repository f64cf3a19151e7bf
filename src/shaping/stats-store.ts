import type { Store } from '../store/database.ts';
import type { ShapingSnapshot } from './snapshot.ts';

// Shaping snapshots in the database (migration 0004-shaping): each MTA node upserts its row;
// `herald mx stats` reads the fresh rows.

export async function writeShapingSnapshot(store: Store, snapshot: ShapingSnapshot): Promise<void> {
  const row = {
    node_id: snapshot.nodeId,
    taken_at: snapshot.takenAt,
    rules_version: snapshot.rulesVersion,
    data: JSON.stringify(snapshot),
  };
  await store.db
    .insertInto('shaping_snapshots')
    .values(row)
    .onConflict((conflict) =>
      conflict
        .column('node_id')
        .doUpdateSet({ taken_at: row.taken_at, rules_version: row.rules_version, data: row.data }),
    )
    .execute();
}

/** Snapshots taken at or after `since` (older rows are from stopped nodes). */
export async function readShapingSnapshots(store: Store, since: number): Promise<ShapingSnapshot[]> {
  const rows = await store.db
    .selectFrom('shaping_snapshots')
    .select(['data'])
    .where('taken_at', '>=', since)
    .orderBy('node_id')
    .execute();
  return rows.map((row) => JSON.parse(row.data) as ShapingSnapshot);
}

export async function deleteShapingSnapshot(store: Store, nodeId: string): Promise<void> {
  await store.db.deleteFrom('shaping_snapshots').where('node_id', '=', nodeId).execute();
}
