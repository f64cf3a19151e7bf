import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { createExecutionService } from '../src/midsourcing/execution-service.ts';
import { purgeMidLogChanges } from '../src/midsourcing/purge.ts';
import { appendInboundPart } from '../src/midsourcing/inbound-store.ts';
import { cleanupWorkflow } from '../src/workflows/builtins/index.ts';
import { describeEachDialect } from './support/databases.ts';

// The execution side's change log is purged by the cleanup workflow once the marketing peer has read
// past a change (the cursor of its next logs request) and the change is older than the retention.

const day = 86_400_000;
const start = Date.UTC(2026, 5, 1, 12);

describeEachDialect('mid-sourcing change log purge', (context) => {
  const clock = manualClock(start);
  const service = () => createExecutionService(context.store());

  async function receivedWithChanges(source: number, count: number): Promise<number> {
    const emails = Array.from({ length: count }, (_, i) => `p${source}-${i}@accept.test`);
    const submitted = await service().submit(
      'marketing-1',
      {
        marketingDeliveryId: source,
        name: `d${source}`,
        fromAddress: 'news@brand.test',
        fromName: null,
        replyTo: null,
        subject: 'Hi',
        html: 'Hi',
        text: null,
        validitySeconds: 3600,
        affinity: null,
        parts: 1,
        recipients: count,
      },
      clock.now(),
    );
    if (!submitted.ok) throw new Error(JSON.stringify(submitted.error));
    const remoteId = submitted.value.remoteId;
    await appendInboundPart(
      context.store(),
      remoteId,
      1,
      `k${source}`,
      emails.map((email, i) => ({ sourceLogId: source * 1000 + i, email, domain: 'accept.test', data: '{}' })),
      clock.now(),
    );
    // One outcome per log: the trigger writes one change row each.
    await context
      .store()
      .db.updateTable('delivery_logs')
      .set({ status: 'sent', attempts: 1, sent_at: clock.now() })
      .where('delivery_id', '=', remoteId)
      .execute();
    return remoteId;
  }

  /** The marketing side's pulls: a page, then the next request (whose cursor acknowledges the page). */
  async function pull(remoteId: number, cursor: number, limit: number): Promise<number> {
    const page = await service().logs('marketing-1', remoteId, cursor, limit, clock.now());
    if (!page.ok) throw new Error(JSON.stringify(page.error));
    return page.value.nextCursor;
  }

  async function changeSeqs(remoteId: number): Promise<Array<number | null>> {
    const rows = await context
      .store()
      .db.selectFrom('mid_log_changes')
      .select('seq')
      .where('delivery_id', '=', remoteId)
      .orderBy('id')
      .execute();
    return rows.map((row) => (row.seq === null ? null : Number(row.seq)));
  }

  async function runPurge(batchSize = 100) {
    const messages: string[] = [];
    const config = parseConfig(
      { workflows: { cleanup: { batchSize } }, midsourcing: { mode: 'execution', logChangesRetentionDays: 7 } },
      'test',
    );
    let keepAlives = 0;
    const outcome = await purgeMidLogChanges.run({
      store: context.store(),
      config,
      clock,
      logger: silentLogger,
      nodeId: 'n',
      runId: 1,
      log: async (message) => void messages.push(message),
      keepAlive: async () => void keepAlives++,
    });
    return { outcome, messages, keepAlives };
  }

  it('deletes, in batches, only changes read past by the peer and older than the retention; never unread or unpublished ones', async () => {
    expect(cleanupWorkflow.steps.map((step) => step.name)).toContain('purge-mid-log-changes');

    // Published now; the peer reads 250 of 260 and acknowledges them with its next request.
    const readPast = await receivedWithChanges(1, 260);
    const cursor = await pull(readPast, 0, 250);
    await pull(readPast, cursor, 250);
    // Published now, never read past (the peer pulled a page but never came back).
    const unread = await receivedWithChanges(2, 5);
    await pull(unread, 0, 10);
    // Six days later: everything is within the retention.
    clock.set(start + 6 * day);
    const early = await runPurge();
    expect(early.outcome).toEqual({ kind: 'done', summary: '0 rows deleted in 0 batches' });

    // Published and read past five days later: younger than the retention at the next run.
    const recent = await receivedWithChanges(4, 3);
    clock.set(start + 5 * day);
    const recentCursor = await pull(recent, 0, 10);
    await pull(recent, recentCursor, 10);
    // Never published (no pull since: a pull publishes every change committed before it).
    const unpublished = await receivedWithChanges(3, 4);

    clock.set(start + 7 * day + 1);
    const first = await runPurge();
    // 250 rows at 100 per batch: three deleting batches and the empty one that ends the loop.
    expect(first.outcome).toEqual({ kind: 'done', summary: '250 rows deleted in 4 batches' });
    expect(first.messages).toEqual([
      'mid-sourcing log changes read by their peer and older than 7 days: deleted 250 rows of 1 deliveries; 0 rows of 0 purged deliveries; 4 batches of at most 100',
    ]);
    expect(first.keepAlives).toBe(3);
    const left = await changeSeqs(readPast);
    expect(left).toHaveLength(10);
    expect(left.every((seq) => seq !== null && seq > cursor)).toBe(true);
    expect(await changeSeqs(unread)).toHaveLength(5);
    expect(await changeSeqs(unpublished)).toEqual([null, null, null, null]);
    expect(await changeSeqs(recent)).toHaveLength(3);

    // The peer's later pulls still page correctly from its cursor.
    const rest = await service().logs('marketing-1', readPast, cursor, 100, clock.now());
    expect(rest.ok && rest.value.changes.map((change) => change.id)).toEqual(
      Array.from({ length: 10 }, (_, i) => 1250 + i),
    );

    clock.set(start + 12 * day + 1);
    const second = await runPurge();
    expect(second.outcome).toMatchObject({ summary: '3 rows deleted in 2 batches' });
    expect(await changeSeqs(recent)).toEqual([]);
    expect(await changeSeqs(unread)).toHaveLength(5);
    expect(await changeSeqs(unpublished)).toHaveLength(4);
  });

  it('deletes the changes of a received delivery that was purged: nobody can read them any more', async () => {
    const gone = await receivedWithChanges(5, 120);
    const kept = await receivedWithChanges(6, 2);
    // What purge-deleted-deliveries does: logs, then the delivery row (cascading to mid_inbound_*).
    await context.store().db.deleteFrom('delivery_logs').where('delivery_id', '=', gone).execute();
    await sql`delete from deliveries where id = ${gone}`.execute(context.store().db);
    const purged = await runPurge();
    expect(purged.messages[0]).toContain('120 rows of 1 purged deliveries; 3 batches of at most 100');
    expect(await changeSeqs(gone)).toEqual([]);
    expect(await changeSeqs(kept)).toHaveLength(2);
  });
});
