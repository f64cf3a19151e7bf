import { expect, it } from 'vitest';
import type { DeliverySummary } from '../../delivery/summary.ts';
import type { DeliveryTick } from '../live-ticks.ts';
import { deliveryLiveView, throughputSeries } from './delivery-live-view.ts';

function tick(pending: number, finishedAt: number | null): DeliveryTick {
  const summary = {
    deliveryId: 7,
    state: finishedAt === null ? 'sending' : 'finished',
    total: 10,
    sent: 10 - pending,
    failed: 0,
    ignored: 0,
    cancelled: 0,
    pending,
    excluded: 0,
    retried: 0,
    lastError: null,
    retryingByReason: {},
  } as unknown as DeliverySummary;
  const at = Date.parse('2026-09-01T12:00:00Z');
  return {
    summary,
    startedAt: at - 60_000,
    finishedAt,
    throughput: [],
    failures: { byReason: [], byDomain: [], byMxHost: [] },
    rate: null,
    at,
  };
}

it('a finished delivery with nothing pending is not "estimating" while its first ETA is computed', () => {
  const finishedAt = Date.parse('2026-09-01T11:59:30Z');
  const finished = deliveryLiveView(tick(0, finishedAt), undefined);
  expect(finished).toMatchObject({ finished: true, finishedAt });
  const sending = deliveryLiveView(tick(4, null), undefined);
  expect(sending).toMatchObject({ finished: false, estimating: true });
});

it('shows the preparation warnings: links recipient data made into something not sent as a link', () => {
  const warned = tick(4, null);
  warned.summary.preparationWarnings = [
    {
      code: 'LINK_REFUSED',
      link: 1,
      urlTemplate: '{{ website }}',
      variables: ['website'],
      recipients: 3,
      example: { recipient: 'a@x.test', value: 'javascript:alert(1)', reason: 'scheme javascript:' },
      message: 'link 1 ({{ website }}) is not a link for 3 recipient(s)',
    },
  ];
  expect(deliveryLiveView(warned, undefined).warnings).toEqual([
    'LINK_REFUSED: link 1 ({{ website }}) is not a link for 3 recipient(s)',
  ]);
  expect(deliveryLiveView(tick(4, null), undefined).warnings).toEqual([]);
});

it('draws a delivery sending for a week in at most 1,440 points, every message still counted', () => {
  // Sent every minute for 7 days: the series (in every 2 s update of the page) was 10,080 points,
  // 212 KB per update per viewer, 9 GB a night for a tab left open.
  const start = Date.parse('2026-09-01T00:00:00Z');
  const minutes = 7 * 1_440;
  const throughput = Array.from({ length: minutes }, (_, i) => ({
    minute: start + i * 60_000,
    sent: 100 + (i % 7),
    failed: i % 3,
    deferred: 2,
  }));
  const week = { ...tick(0, null), startedAt: start, at: start + minutes * 60_000, throughput };
  const [times, sent, deferred, failed] = throughputSeries(week) as [number[], number[], number[], number[]];
  expect(times.length).toBeLessThanOrEqual(1_440);
  const step = (times[1]! - times[0]!) / 60;
  expect(step).toBe(8);
  // Each point is messages per minute over its step: the totals are those of the minutes.
  const total = (column: number[]) => Math.round(column.reduce((sum, n) => sum + n * step, 0));
  expect(total(sent)).toBe(throughput.reduce((sum, m) => sum + m.sent, 0));
  expect(total(failed)).toBe(throughput.reduce((sum, m) => sum + m.failed, 0));
  expect(total(deferred)).toBe(2 * minutes);
  expect(JSON.stringify([times, sent, deferred, failed]).length).toBeLessThan(60_000);
});

it('draws a short delivery minute by minute, quiet minutes at zero', () => {
  const start = Date.parse('2026-09-01T00:00:00Z');
  const throughput = [
    { minute: start, sent: 5, failed: 0, deferred: 0 },
    { minute: start + 3 * 60_000, sent: 2, failed: 1, deferred: 0 },
  ];
  const short = { ...tick(0, null), startedAt: start, at: start + 3 * 60_000, throughput };
  expect(throughputSeries(short)).toEqual([
    [-1, 0, 1, 2, 3].map((i) => (start + i * 60_000) / 1000),
    [0, 5, 0, 0, 2],
    [0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1],
  ]);
});
