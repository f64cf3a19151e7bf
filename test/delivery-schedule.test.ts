import { expect, it } from 'vitest';
import { type Clock, manualClock } from '../src/common/clock.ts';
import { startDelivery } from '../src/delivery/lifecycle.ts';
import type { Store } from '../src/store/database.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';
import { preparedOnStore } from './support/fixtures.ts';

const hour = 3_600_000;

function preparedWithSchedule(store: Store, clock: Clock, list: string, scheduledAt: number | null) {
  return preparedOnStore(store, clock, list, 1, { scheduledAt });
}

describeEachDialect('scheduled start', (context) => {
  it("waits for the definition's scheduledAt when started without a time", async () => {
    const clock = manualClock();
    const at = clock.now() + 3 * hour;
    const id = await preparedWithSchedule(context.store(), clock, 'scheduled', at);
    const started = await startDelivery(context.store(), id, clock.now());
    expect(started).toMatchObject({ state: 'start_pending', started_at: null, valid_until: null });
    expect(Number(started.scheduled_at)).toBe(at);
    // Started again by the operator: at once, the schedule overridden.
    const now = await startDelivery(context.store(), id, clock.now());
    expect(now.state).toBe('in_progress');
    expect(Number(now.started_at)).toBe(clock.now());
  });

  it('starts at once when the scheduledAt has passed, and an explicit time wins over it', async () => {
    const clock = manualClock();
    const past = await preparedWithSchedule(context.store(), clock, 'past', clock.now() - hour);
    expect((await startDelivery(context.store(), past, clock.now())).state).toBe('in_progress');
    const later = await preparedWithSchedule(context.store(), clock, 'later', clock.now() + hour);
    const moved = await startDelivery(context.store(), later, clock.now(), clock.now() + 5 * hour);
    expect(Number(moved.scheduled_at)).toBe(clock.now() + 5 * hour);
  });

  it("refuses a --at without its offset (read in the server's time zone) or not ISO 8601, nothing changed", async () => {
    const clock = manualClock();
    const id = String(await preparedWithSchedule(context.store(), clock, 'cli-at', null));
    for (const at of ['2030-01-01 10:00', '2030-01-01T10:00:00', '1', 'Jan 1 2030']) {
      const run = await runHerald(context.url(), ['delivery', 'start', id, '--at', at]);
      expect(run.exitCode).toBe(1);
      expect(run.stderr.join('\n')).toContain(`--at "${at}" is not an ISO 8601 time with its offset`);
    }
    const shown = await runHerald(context.url(), ['delivery', 'show', id, '--json']);
    expect(shown.json()[0]).toMatchObject({ state: 'prepared' });
    const run = await runHerald(context.url(), [
      'delivery',
      'start',
      id,
      '--at',
      '2030-01-01T10:00:00+02:00',
      '--json',
    ]);
    expect(run.json()[0]).toMatchObject({ state: 'start_pending', scheduledAt: '2030-01-01T08:00:00.000Z' });
  });
});
