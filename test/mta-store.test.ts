import { expect, it } from 'vitest';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import { describeEachDialect } from './support/databases.ts';

const reply = { code: 250, enhanced: '2.0.0', text: 'OK queued' };

describeEachDialect('MTA store', (context) => {
  it('claims due logs of in-progress deliveries only, oldest first, and never twice', async () => {
    const { db } = context.store();
    const mtaStore = createMtaStore(context.store());
    const now = 1_000_000;
    const a = await seedDelivery(db, {
      now,
      recipients: [{ email: 'a1@x.test' }, { email: 'a2@x.test' }],
      nextAttemptAt: now - 10,
    });
    await seedDelivery(db, { now, state: 'paused', recipients: [{ email: 'p@x.test' }] });
    const later = await seedDelivery(db, { now, recipients: [{ email: 'later@x.test' }], nextAttemptAt: now + 5_000 });

    const first = await mtaStore.claimDue('node-a', now, 1, 60_000);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ deliveryId: a.deliveryId, attempts: 0, claimedUntil: now + 60_000 });
    const second = await mtaStore.claimDue('node-b', now, 10, 60_000);
    expect(second.map((log) => log.id)).toEqual(a.logIds.filter((id) => id !== first[0]!.id));
    expect(await mtaStore.claimDue('node-b', now, 10, 60_000)).toEqual([]);
    expect(await mtaStore.nextDueAt()).toBe(now + 5_000);
    expect((await mtaStore.claimDue('node-b', now + 5_000, 10, 60_000)).map((log) => log.id)).toEqual(later.logIds);
  });

  it('records outcomes in one statement, only for rows still claimed by the node', async () => {
    const { db } = context.store();
    const mtaStore = createMtaStore(context.store());
    const now = 2_000_000;
    const { deliveryId, logIds } = await seedDelivery(db, {
      now,
      recipients: ['s', 'd', 'f', 'r', 'x'].map((name) => ({ email: `${name}@y.test` })),
    });
    const claimed = await mtaStore.claimDue('node-a', now, 100, 60_000);
    expect(claimed.map((log) => log.id).sort()).toEqual([...logIds].sort());
    const [sent, deferred, failed, released, stolen] = logIds as [number, number, number, number, number];
    // Another node took `stolen` back after its lease: a late outcome must not overwrite it.
    await db.updateTable('delivery_logs').set({ claimed_by: 'node-b' }).where('id', '=', stolen).execute();
    await mtaStore.recordOutcomes('node-a', [
      { kind: 'sent', logId: sent, deliveryId, email: 's@y.test', mxHost: 'mx.y.test', at: now + 1, reply },
      {
        kind: 'deferred',
        logId: deferred,
        deliveryId,
        email: 'd@y.test',
        mxHost: 'mx.y.test',
        at: now + 2,
        retryAt: now + 60_000,
        reply: { code: 452, enhanced: '4.2.2', text: "Mailbox full, it's 'quoted'" },
        verdict: { type: 'soft', reason: 'mailbox_full', category: 'mailboxfull', ruleId: 'full', packVersion: 't1' },
      },
      {
        kind: 'failed',
        logId: failed,
        deliveryId,
        email: 'f@y.test',
        expired: false,
        mxHost: 'mx.y.test',
        at: now + 3,
        reply: { code: 550, enhanced: '5.1.1', text: 'User unknown' },
        verdict: {
          type: 'hard',
          reason: 'user_unknown',
          category: 'userunknown',
          ruleId: 'unknown',
          packVersion: 't1',
        },
      },
      { kind: 'released', logId: released, deliveryId, email: 'r@y.test', mxHost: null, at: now + 4 },
      { kind: 'sent', logId: stolen, deliveryId, email: 'x@y.test', mxHost: 'mx.y.test', at: now + 5, reply },
    ]);
    const rows = await db
      .selectFrom('delivery_logs')
      .selectAll()
      .where('delivery_id', '=', deliveryId)
      .orderBy('id')
      .execute();
    const byId = new Map(rows.map((row) => [Number(row.id), row]));
    expect(byId.get(sent)).toMatchObject({
      status: 'sent',
      attempts: 1,
      sent_at: now + 1,
      last_reply_code: 250,
      last_enhanced_status: '2.0.0',
      last_reply_text: 'OK queued',
      claimed_by: null,
      mx_host: 'mx.y.test',
      failure_type: null,
    });
    expect(byId.get(deferred)).toMatchObject({
      status: 'pending',
      attempts: 1,
      next_attempt_at: now + 60_000,
      last_reply_code: 452,
      last_reply_text: "Mailbox full, it's 'quoted'",
      failure_type: 'soft',
      failure_reason: 'mailbox_full',
      failure_category: 'mailboxfull',
      claimed_by: null,
    });
    expect(byId.get(failed)).toMatchObject({
      status: 'failed',
      attempts: 1,
      failure_type: 'hard',
      failure_reason: 'user_unknown',
      failure_category: 'userunknown',
      sent_at: null,
    });
    expect(byId.get(released)).toMatchObject({
      status: 'pending',
      attempts: 0,
      claimed_by: null,
      last_reply_code: null,
    });
    expect(byId.get(stolen)).toMatchObject({ status: 'sending', claimed_by: 'node-b', attempts: 0 });
  });

  it('releases its own claims, recovers expired ones of other nodes, and finishes completed deliveries', async () => {
    const { db } = context.store();
    const mtaStore = createMtaStore(context.store());
    // Earlier than the other tests' leases, so their claims are not recovered here.
    const now = 100_000;
    const { deliveryId, logIds } = await seedDelivery(db, {
      now,
      recipients: [{ email: 'one@z.test' }, { email: 'two@z.test' }],
    });
    await mtaStore.claimDue('node-c', now, 1, 10_000);
    await mtaStore.claimDue('node-d', now, 1, 10_000);
    expect(await mtaStore.releaseClaims('node-c', now)).toBe(1);
    expect(await mtaStore.recoverExpiredClaims(now + 10_000)).toBe(0);
    expect(await mtaStore.recoverExpiredClaims(now + 10_001)).toBe(1);
    const statuses = await db
      .selectFrom('delivery_logs')
      .select('status')
      .where('delivery_id', '=', deliveryId)
      .execute();
    expect(statuses.map((row) => row.status)).toEqual(['pending', 'pending']);

    expect(await mtaStore.finishCompletedDeliveries(now)).not.toContain(deliveryId);
    const claimed = await mtaStore.claimDue('node-c', now + 20_000, 10, 10_000);
    await mtaStore.recordOutcomes(
      'node-c',
      claimed.map((log) => ({
        kind: 'sent' as const,
        logId: log.id,
        deliveryId: log.deliveryId,
        email: log.email,
        mxHost: 'mx',
        at: now + 21_000,
        reply,
      })),
    );
    expect(await mtaStore.finishCompletedDeliveries(now + 22_000)).toContain(deliveryId);
    const delivery = await mtaStore.loadDeliveryContent(deliveryId);
    expect(delivery).toMatchObject({ state: 'finished' });
    expect(logIds).toHaveLength(2);
  });
});
