import type { Kysely } from 'kysely';
import { bigint, notNull } from './column-types.ts';

// One row per running MTA process (issue 12 item 7): the node id it claims delivery logs under,
// which process holds it (host, pid) and its heartbeat. A process starting with a node id whose
// heartbeat is live is refused (explicit id) or takes a process-specific id (implicit id), so two
// processes never share claims; a row whose heartbeat expired (or whose process is gone, same host)
// is taken over, with the claims it left.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('mta_nodes')
    .addColumn('node_id', 'text', (column) => column.primaryKey())
    .addColumn('host', 'text', notNull)
    .addColumn('pid', 'integer', notNull)
    .addColumn('started_at', bigint, notNull)
    .addColumn('heartbeat_at', bigint, notNull)
    .execute();
}
