import { expect, it } from 'vitest';
import { topPendingDomains } from '../src/delivery/progress-store.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';

// The doctor's recipient domains with the most pending logs of a delivery (the top 20 of a list of
// 50,000 domains), chosen in the database from the counters by domain (migration 0033).

describeEachDialect('doctor: top pending domains of a delivery', (context) => {
  it('ranks domains by pending (sending and deferred included), then by name, with the MX hosts met', async () => {
    const store = context.store();
    const emails = [
      ...['1', '2', '3', '4'].map((n) => `u${n}@big.test`),
      ...['1', '2'].map((n) => `u${n}@aa.test`),
      ...['1', '2'].map((n) => `u${n}@a.test`),
      ...['1', '2'].map((n) => `u${n}@a-z.test`),
      'u1@done.test',
      'u1@one.test',
    ];
    const { deliveryId, logIds } = await seedDelivery(store.db, {
      recipients: emails.map((email) => ({ email })),
      now: 1,
    });
    const log = (email: string) => logIds[emails.indexOf(email)]!;
    // big.test: one sent through mx1, one deferred by mx2, one being sent, one untried: 3 pending.
    await store.db
      .updateTable('delivery_logs')
      .set({ status: 'sent', mx_host: 'mx1.big.test', attempts: 1 })
      .where('id', '=', log('u1@big.test'))
      .execute();
    await store.db
      .updateTable('delivery_logs')
      .set({ attempts: 1, mx_host: 'mx2.big.test' })
      .where('id', '=', log('u2@big.test'))
      .execute();
    await store.db
      .updateTable('delivery_logs')
      .set({ status: 'sending' })
      .where('id', '=', log('u3@big.test'))
      .execute();
    await store.db
      .updateTable('delivery_logs')
      .set({ status: 'failed', attempts: 1 })
      .where('id', '=', log('u1@done.test'))
      .execute();
    // Three domains of 2 pending: by code point, '-' < '.' < 'a' (a collation ignoring punctuation puts aa.test first).
    expect(await topPendingDomains(store, deliveryId, 4)).toEqual([
      { domain: 'big.test', pending: 3, mxHosts: ['mx1.big.test', 'mx2.big.test'] },
      { domain: 'a-z.test', pending: 2, mxHosts: [] },
      { domain: 'a.test', pending: 2, mxHosts: [] },
      { domain: 'aa.test', pending: 2, mxHosts: [] },
    ]);
    expect((await topPendingDomains(store, deliveryId)).map((d) => d.domain)).toEqual([
      'big.test',
      'a-z.test',
      'a.test',
      'aa.test',
      'one.test',
    ]);
  });
});
