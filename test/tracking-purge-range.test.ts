import { expect, it } from 'vitest';
import { trackingEventPurgeRange } from '../src/tracking/tracking-store.ts';
import { describeEachDialect } from './support/databases.ts';

// The retention purge finds the last event older than the cut-off by a binary search over ids (the
// raw log has no index on `at`): right across gaps left by earlier purges, with one late event.

describeEachDialect('raw tracking log purge range', ({ store }) => {
  it('finds the last old event across id gaps, and nothing when no event is old', async () => {
    const db = store().db;
    const event = (at: number) => ({
      delivery_id: 1,
      log_id: 1,
      kind: 'click' as const,
      link_index: 0,
      at,
      flags: 0,
      user_agent: null,
    });
    expect(await trackingEventPurgeRange(store(), 1_000)).toBeUndefined();

    // 300 events at times 0..299, then ids 50-149 purged (a gap), then one late event (time 10) at the end.
    await db
      .insertInto('tracking_events')
      .values(Array.from({ length: 300 }, (_, i) => event(i)))
      .execute();
    const ids = (await db.selectFrom('tracking_events').select('id').orderBy('id').execute()).map((r) => Number(r.id));
    await db.deleteFrom('tracking_events').where('id', '>=', ids[50]!).where('id', '<', ids[150]!).execute();
    await db.insertInto('tracking_events').values(event(10)).execute();

    expect(await trackingEventPurgeRange(store(), 0)).toBeUndefined();
    expect(await trackingEventPurgeRange(store(), 1)).toEqual({ min: ids[0], max: ids[0] });
    expect(await trackingEventPurgeRange(store(), 100)).toEqual({ min: ids[0], max: ids[49] });
    expect(await trackingEventPurgeRange(store(), 151)).toEqual({ min: ids[0], max: ids[150] });
    expect(await trackingEventPurgeRange(store(), 250)).toEqual({ min: ids[0], max: ids[249] });
    // Every event old: the range reaches the last (late) one.
    const last = await db
      .selectFrom('tracking_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirstOrThrow();
    expect(await trackingEventPurgeRange(store(), 10_000)).toEqual({ min: ids[0], max: Number(last.id) });
  });
});
