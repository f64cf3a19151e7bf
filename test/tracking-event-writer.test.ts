import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import type { RawEvent } from '../src/tracking/event-log.ts';
import { createSqliteEventWriter } from '../src/tracking/sqlite-event-writer.ts';

// The SQLite raw-log writer runs in a worker thread with its own connection: what it writes must be
// exactly what the server captured (nulls, quotes, non-ASCII user agents, large ids and times).

describe('SQLite tracking event writer (worker thread)', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-event-writer-'));
    store = openStore(`sqlite:${join(dir, 'herald.db')}`);
    await migrateToLatest(store);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes each batch exactly, in one transaction, with integers stored as integers, and reports a broken table as a failed write', async () => {
    const writer = createSqliteEventWriter(store.location);
    const at = Date.UTC(2026, 5, 1, 12);
    const batch: RawEvent[] = [
      {
        deliveryId: 7,
        logId: 2 ** 40,
        kind: 'click',
        linkIndex: 3,
        at,
        flags: 6,
        userAgent: `Mozilla/5.0 "quoted" 'x' \\ ünïcødé ✓`,
      },
      { deliveryId: 7, logId: 12, kind: 'open', linkIndex: null, at: at + 1, flags: 16, userAgent: null },
      { deliveryId: 8, logId: 13, kind: 'unsubscribe', linkIndex: null, at: at + 2, flags: 0, userAgent: '' },
    ];
    try {
      await writer.write(batch);
      await writer.write([]);
      const rows = await store.db.selectFrom('tracking_events').selectAll().orderBy('id').execute();
      const types = await sql<{
        types: string;
      }>`select group_concat(distinct typeof(delivery_id) || typeof(log_id) || typeof(at) || typeof(flags)) as types from tracking_events`.execute(
        store.db,
      );
      expect(types.rows[0]!.types).toBe('integerintegerintegerinteger');
      expect(
        rows.map((r) => ({
          deliveryId: Number(r.delivery_id),
          logId: Number(r.log_id),
          kind: r.kind,
          linkIndex: r.link_index,
          at: Number(r.at),
          flags: Number(r.flags),
          userAgent: r.user_agent,
        })),
      ).toEqual(batch);

      // Several full statements and a shorter tail, in order, nothing lost or repeated.
      await store.db.deleteFrom('tracking_events').execute();
      const many: RawEvent[] = Array.from({ length: 250 }, (_, i) => ({
        deliveryId: 9,
        logId: i + 1,
        kind: 'click',
        linkIndex: i % 3,
        at: at + i,
        flags: 0,
        userAgent: i % 2 ? 'agent-a' : null,
      }));
      await writer.write(many);
      const written = await store.db
        .selectFrom('tracking_events')
        .select(['log_id', 'link_index', 'user_agent'])
        .orderBy('id')
        .execute();
      expect(written.map((r) => [Number(r.log_id), r.link_index, r.user_agent])).toEqual(
        many.map((e) => [e.logId, e.linkIndex, e.userAgent]),
      );

      await store.db.schema.alterTable('tracking_events').renameTo('tracking_events_away').execute();
      try {
        await expect(writer.write(batch)).rejects.toThrow(/writing tracking events/);
      } finally {
        await store.db.schema.alterTable('tracking_events_away').renameTo('tracking_events').execute();
      }
    } finally {
      await writer.close();
    }
  });
});
