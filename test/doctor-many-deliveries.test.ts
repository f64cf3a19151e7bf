import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { formatDiagnosis } from '../src/doctor/format.ts';
import { runDoctor } from '../src/doctor/run-doctor.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { describeEachDialect } from './support/databases.ts';

// The doctor reads the 200 newest unfinished deliveries; `herald doctor --delivery N` must read N
// whatever its age (it answered "all checks passed" for a delivery with 50% hard bounces once 200
// newer deliveries were unfinished).

const now = Date.parse('2026-09-01T12:00:00Z');

describeEachDialect('doctor with more unfinished deliveries than it lists', (context) => {
  let herald: Herald;
  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock: manualClock(now),
    });
  });
  afterAll(async () => {
    await herald?.close();
  });

  it('diagnoses the delivery asked about even when 200 newer ones are unfinished', async () => {
    const recipients = Array.from({ length: 200 }, (_, i) => ({ email: `u${i}@list.example` }));
    const { deliveryId, logIds } = await seedDelivery(herald.store.db, { now: now - 3_600_000, recipients });
    await herald.store.db
      .updateTable('delivery_logs')
      .set({ status: 'sent', sent_at: now - 60_000, updated_at: now - 60_000 })
      .where('id', 'in', logIds.slice(0, 100))
      .execute();
    await herald.store.db
      .updateTable('delivery_logs')
      .set({ status: 'failed', failure_type: 'hard', failure_reason: 'user_unknown', updated_at: now - 60_000 })
      .where('id', 'in', logIds.slice(100))
      .execute();
    for (let i = 0; i < 200; i++)
      await seedDelivery(herald.store.db, { now: now - 60_000, recipients: [{ email: `v${i}@other.example` }] });

    // Without --delivery the doctor reads the 200 newest and says how many it left out.
    const all = await runDoctor(herald, { skipConfiguration: true });
    expect(all.deliveriesNotChecked).toBe(1);
    expect(formatDiagnosis(all, all.checkedAt, '', all.deliveriesNotChecked)).toContain(
      '1 older unfinished deliveries not checked (the doctor reads the 200 newest): `herald doctor --delivery N` checks one of them',
    );

    const run = await runDoctor(herald, { deliveryId, skipConfiguration: true });
    expect(run.findings.find((f) => f.check === 'delivery-bounces')).toMatchObject({
      severity: 'critical',
      subject: `delivery ${deliveryId}`,
      evidence: { attempted: 200, hard: 100 },
    });
  });
});
