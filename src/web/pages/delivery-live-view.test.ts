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
