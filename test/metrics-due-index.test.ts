import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { dueByDomain } from '../src/metrics/metrics-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';

// herald_queue_due counts the pending logs due now by recipient domain on every metrics refresh:
// from the (status, next_attempt_at, domain) index alone, never a read of each log's table row
// (migration 0037: ~260 ms on SQLite at 170,000 due logs before).

describeEachDialect('/metrics due logs by domain', (context) => {
  it('counts the due pending logs by domain, and reads only the due index to do it', async () => {
    const store = context.store();
    const now = 1_000_000;
    const recipients = ['a@one.test', 'b@one.test', 'c@two.test', 'd@two.test', 'e@three.test'].map((email) => ({
      email,
    }));
    const { logIds } = await seedDelivery(store.db, { recipients, now, nextAttemptAt: now - 1 });
    // Sent, due later, claimed: none of them is due pending.
    await store.db.updateTable('delivery_logs').set({ status: 'sent' }).where('id', '=', logIds[1]!).execute();
    await store.db
      .updateTable('delivery_logs')
      .set({ next_attempt_at: now + 1 })
      .where('id', '=', logIds[3]!)
      .execute();
    await store.db.updateTable('delivery_logs').set({ status: 'sending' }).where('id', '=', logIds[4]!).execute();
    const counts = await dueByDomain(store, now);
    expect(counts.sort((a, b) => a.domain.localeCompare(b.domain))).toEqual([
      { domain: 'one.test', count: 1 },
      { domain: 'two.test', count: 1 },
    ]);

    const query = `select domain, count(*) from delivery_logs where status = 'pending' and next_attempt_at <= ${now} group by domain`;
    if (context.dialect === 'sqlite') {
      const plan = await sql.raw<{ detail: string }>(`explain query plan ${query}`).execute(store.db);
      expect(plan.rows.map((row) => row.detail).join('\n')).toContain('USING COVERING INDEX delivery_logs_due');
    } else {
      // With sequential scans ruled out (a table this small is read whole otherwise), the index alone answers.
      await sql`vacuum analyze delivery_logs`.execute(store.db);
      const plan = await store.db.connection().execute(async (db) => {
        await sql`set enable_seqscan = off`.execute(db);
        try {
          return await sql.raw<{ 'QUERY PLAN': string }>(`explain ${query}`).execute(db);
        } finally {
          await sql`reset enable_seqscan`.execute(db);
        }
      });
      expect(plan.rows.map((row) => row['QUERY PLAN']).join('\n')).toContain('Index Only Scan using delivery_logs_due');
    }
  });
});
