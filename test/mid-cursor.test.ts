import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { createExecutionService } from '../src/midsourcing/execution-service.ts';
import { appendInboundPart, publishLogChanges, readLogChanges } from '../src/midsourcing/inbound-store.ts';
import { describeEachDialect } from './support/databases.ts';
import { holdTransaction } from './support/held-transaction.ts';

// The execution side's change log: captured by trigger on outcomes only, and readable by a cursor
// that a late-committing row can never fall behind.

const now = Date.UTC(2026, 5, 1, 12);

describeEachDialect('mid-sourcing change cursor', (context) => {
  async function receivedDelivery(source: number, emails: string[]) {
    const service = createExecutionService(context.store());
    const submitted = await service.submit(
      'm',
      {
        marketingDeliveryId: source,
        name: 'd',
        fromAddress: 'news@brand.test',
        fromName: null,
        replyTo: null,
        subject: 'Hi',
        html: 'Hi',
        text: null,
        validitySeconds: 60,
        affinity: null,
        parts: 1,
        recipients: emails.length,
      },
      now,
    );
    if (!submitted.ok) throw new Error(JSON.stringify(submitted.error));
    const remoteId = submitted.value.remoteId;
    await appendInboundPart(
      context.store(),
      remoteId,
      1,
      'k',
      emails.map((email, i) => ({ sourceLogId: 1000 + i, email, domain: 'accept.test', data: '{}' })),
      now,
    );
    const ids = await context
      .store()
      .db.selectFrom('delivery_logs')
      .select('id')
      .where('delivery_id', '=', remoteId)
      .orderBy('id')
      .execute();
    return { remoteId, logIds: ids.map((row) => Number(row.id)) };
  }

  it('captures outcomes but not claims or releases, and pages them by cursor', async () => {
    const { db } = context.store();
    const { remoteId, logIds } = await receivedDelivery(1, ['a@accept.test', 'b@accept.test', 'c@accept.test']);
    await db
      .updateTable('delivery_logs')
      .set({ status: 'sending', claimed_by: 'n' })
      .where('delivery_id', '=', remoteId)
      .execute();
    await db
      .updateTable('delivery_logs')
      .set({ status: 'pending', claimed_by: null })
      .where('id', '=', logIds[2]!)
      .execute();
    await publishLogChanges(context.store(), now);
    expect((await readLogChanges(context.store(), remoteId, 0, 10)).changes).toEqual([]);

    await db
      .updateTable('delivery_logs')
      .set({ status: 'sent', attempts: 1, sent_at: now })
      .where('id', '=', logIds[0]!)
      .execute();
    await db
      .updateTable('delivery_logs')
      .set({ status: 'pending', attempts: 1, last_reply_code: 451 })
      .where('id', '=', logIds[1]!)
      .execute();
    await publishLogChanges(context.store(), now);
    const first = await readLogChanges(context.store(), remoteId, 0, 1);
    expect(first.changes).toMatchObject([{ id: 1000, status: 'sent', attempts: 1 }]);
    const second = await readLogChanges(context.store(), remoteId, first.nextCursor, 10);
    expect(second.changes).toMatchObject([{ id: 1001, status: 'pending', attempts: 1, replyCode: 451 }]);
    expect((await readLogChanges(context.store(), remoteId, second.nextCursor, 10)).changes).toEqual([]);

    // A log of a delivery that was not received from a peer is never captured.
    const local = await db
      .insertInto('deliveries')
      .values({
        name: 'local',
        state: 'in_progress',
        from_address: 'a@b.test',
        from_name: null,
        reply_to: null,
        subject_template: 's',
        html_template: null,
        text_template: 't',
        list_id: null,
        affinity: null,
        validity_seconds: 60,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('delivery_logs')
      .values({
        delivery_id: local.id,
        email: 'x@accept.test',
        domain: 'accept.test',
        data: '{}',
        status: 'pending',
        attempts: 0,
        next_attempt_at: 0,
        updated_at: now,
      })
      .execute();
    await db
      .updateTable('delivery_logs')
      .set({ status: 'sent', attempts: 1 })
      .where('delivery_id', '=', local.id)
      .execute();
    const captured = await context
      .store()
      .db.selectFrom('mid_log_changes')
      .select('id')
      .where('delivery_id', '=', local.id)
      .execute();
    expect(captured).toEqual([]);
  });

  it.skipIf(context.dialect !== 'postgres')(
    'never lets the cursor pass a change that commits late (PostgreSQL)',
    async () => {
      const store = context.store();
      const { remoteId, logIds } = await receivedDelivery(2, ['late@accept.test', 'early@accept.test']);
      // Transaction "late" writes its outcome first (smaller change id) but commits last.
      const late = await holdTransaction(store, async (trx) => {
        await sql`update delivery_logs set status = 'sent', attempts = 1 where id = ${logIds[0]!}`.execute(trx);
      });
      await sql`update delivery_logs set status = 'failed', attempts = 1 where id = ${logIds[1]!}`.execute(store.db);
      await publishLogChanges(store, now);
      const before = await readLogChanges(store, remoteId, 0, 10);
      expect(before.changes.map((change) => change.id)).toEqual([1001]);

      await late.commit();
      await publishLogChanges(store, now);
      const after = await readLogChanges(store, remoteId, before.nextCursor, 10);
      expect(after.changes).toMatchObject([{ id: 1000, status: 'sent' }]);
      expect(after.nextCursor).toBeGreaterThan(before.nextCursor);
    },
  );
});
