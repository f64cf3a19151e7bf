import type { Kysely } from 'kysely';
import type { Database } from '../store/tables.ts';
import type { ShapingSnapshot } from './snapshot.ts';

// Shaping snapshots in the database (migration 0004-shaping): each MTA node upserts its row;
// `herald mx stats` reads the fresh rows. The table's row type lives here, beside its only users.

export interface ShapingSnapshotTable {
  node_id: string;
  taken_at: number;
  rules_version: string;
  data: string;
}

type ShapingDatabase = Database & { shaping_snapshots: ShapingSnapshotTable };

function tables(db: Kysely<Database>): Kysely<ShapingDatabase> {
  return db.withTables<{ shaping_snapshots: ShapingSnapshotTable }>();
}

export async function writeShapingSnapshot(db: Kysely<Database>, snapshot: ShapingSnapshot): Promise<void> {
  const row = { node_id: snapshot.nodeId, taken_at: snapshot.takenAt, rules_version: snapshot.rulesVersion, data: JSON.stringify(snapshot) };
  await tables(db)
    .insertInto('shaping_snapshots')
    .values(row)
    .onConflict((conflict) => conflict.column('node_id').doUpdateSet({ taken_at: row.taken_at, rules_version: row.rules_version, data: row.data }))
    .execute();
}

/** Snapshots taken at or after `since` (older rows are from stopped nodes). */
export async function readShapingSnapshots(db: Kysely<Database>, since: number): Promise<ShapingSnapshot[]> {
  const rows = await tables(db).selectFrom('shaping_snapshots').select(['data']).where('taken_at', '>=', since).orderBy('node_id').execute();
  return rows.map((row) => JSON.parse(row.data) as ShapingSnapshot);
}

export async function deleteShapingSnapshot(db: Kysely<Database>, nodeId: string): Promise<void> {
  await tables(db).deleteFrom('shaping_snapshots').where('node_id', '=', nodeId).execute();
}
