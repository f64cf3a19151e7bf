import { expect, it } from 'vitest';
import type { DeliverySummary } from '../../delivery/summary.ts';
import type { DeliveryTick } from '../live-ticks.ts';
import { deliveryLiveView } from './delivery-live-view.ts';

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
