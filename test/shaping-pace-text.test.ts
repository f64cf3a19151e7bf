import { expect, it } from 'vitest';
import { bindingOf } from '../src/shaping/snapshot.ts';
import { formatStatsView, mergeSnapshots } from '../src/shaping/stats-view.ts';

// Issue 13 item 7: the binding rate reads as a pace, and connection counts say they are connections.

const limits = {
  maxConnections: 5,
  maxMessagesPerHour: 3000,
  maxMessagesPerConnection: 50,
  configuredMaxConnections: 5,
  configuredMaxMessagesPerHour: 3000,
};

it('a binding maxMessagesPerHour is shown as a pace with the rule and what it is counted per', () => {
  const now = 1_000_000;
  const binding = bindingOf({
    open: 1,
    messages: 30,
    limits,
    denied: { limit: 'maxMessagesPerHour', at: now - 1_000 },
    backoffs: [],
    now,
    rule: 'generic',
    scope: 'MX host',
  });
  expect(binding).toEqual({
    binding: 'maxMessagesPerHour',
    bindingReason:
      'pacing 0.83 msg/s per MX host: rule generic, maxMessagesPerHour 3000 (one message every 1200 ms; 30 in the last hour)',
  });
});

it('mx stats labels connection counts as connections', () => {
  const now = 1_000_000;
  const view = mergeSnapshots(
    [
      {
        format: 1,
        nodeId: 'n1',
        takenAt: now,
        rulesVersion: 'v1',
        backend: 'memory',
        periodMs: 3_600_000,
        paths: [],
        rules: [
          {
            rateKey: 'generic|id0|mx.corp.test',
            rule: 'generic',
            masks: ['*'],
            shared: false,
            publicId: 0,
            limits,
            openConnections: 2,
            messages: 30,
            load: { messagesPerHour: 0.01 },
            waiting: 0,
            binding: 'none',
            bindingReason: 'below every limit',
            backoffs: [],
          },
        ],
        backoffs: [],
        suspensions: [],
        throttle: { connections: {}, rates: {} },
      },
    ],
    now,
  );
  const text = formatStatsView(view).join('\n');
  expect(text).toMatch(/RATE KEY\s+CONNECTIONS\s+MSG\/H/);
  expect(text).toMatch(/generic\|id0\|mx\.corp\.test\s+2 open\s+30\/3000/);
});
