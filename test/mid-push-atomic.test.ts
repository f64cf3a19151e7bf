import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { getDelivery } from '../src/delivery/delivery-store.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';

// A push moves the delivery to in_progress at its peer and writes the outbound row the sync workflow
// and the doctor follow, as one fact: when the second write fails (a crash, a full disk), the first
// is rolled back. Before, the delivery stayed in_progress at the peer with no outbound row, seen by
// nothing. The failure is the database's own: a trigger refuses the outbound row.

const clock = manualClock(Date.UTC(2026, 5, 1, 9));
let store: Store;
let database: TestDatabase;

beforeAll(async () => {
  ({ store, database } = await openMigratedDatabase('sqlite'));
});
afterAll(async () => {
  await store?.close();
  await database?.drop();
});

it('leaves the delivery prepared when its outbound row cannot be written', async () => {
  const { deliveryId } = await seedPreparedDelivery(store, {
    name: 'atomic-push',
    recipients: [{ email: 'pat@accept.test', data: { first_name: 'Pat' } }],
    validitySeconds: 3600,
    clock,
  });
  await sql`CREATE TRIGGER refuse_outbound BEFORE INSERT ON mid_outbound_deliveries
    BEGIN SELECT RAISE(ABORT, 'disk gone'); END`.execute(store.db);
  // Never contacted: the push fails before its first request.
  const client = createPeerClient({
    peer: { name: 'exec-1', url: 'http://127.0.0.1:9/', secret: 'loopback-shared-secret-0123456789' },
    localName: 'marketing-1',
    timeoutMs: 1_000,
    clock,
  });
  try {
    await expect(
      pushDelivery({
        store,
        client,
        deliveryId,
        partSize: 10,
        inFlight: 1,
        retry: { maxAttempts: 1, baseMs: 1, maxMs: 1 },
        clock,
      }),
    ).rejects.toThrow(/disk gone/);
  } finally {
    client.close();
  }
  const delivery = await getDelivery(store, deliveryId);
  expect({ state: delivery.state, peer: delivery.execution_peer }).toEqual({ state: 'prepared', peer: null });
});
