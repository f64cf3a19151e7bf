import { expect, it } from 'vitest';
import type { ActiveBackoff } from './backoff.ts';
import type { PathStats } from './path-counters.ts';
import { loadRuleTexts } from './rule-loader.ts';
import { buildSnapshot, snapshotRowLimit, type SnapshotInput } from './snapshot.ts';
import type { ThrottleSnapshot } from './throttle.ts';

const pack = `
rules:
  - name: generic
    mask: "*"
    perMxHost: true
    maxConnections: 4
    maxMessagesPerHour: 3000
`;

function pathOf(i: number): PathStats {
  return {
    pathId: `generic|1|10.0.${i >> 8}.${i & 255}`,
    rule: 'generic',
    mxHost: `mx.company${i}.example`,
    mxIp: `10.0.${i >> 8}.${i & 255}`,
    publicId: 1,
    openConnections: 0,
    messages: 1,
    connectionsAccepted: 1,
    connectionsRefused: 0,
    unreachable: 0,
    deferrals: { '4xx': 0, '5xx': 0, local: 0 },
    lastActivityAt: 0,
  };
}

async function snapshotOf(paths: number, backoffs: ActiveBackoff[], throttle: ThrottleSnapshot) {
  const loaded = await loadRuleTexts([{ file: 'test.yaml', text: pack }]);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  const input: SnapshotInput = {
    nodeId: 'n1',
    now: 1_000,
    periodMs: 3_600_000,
    rules: loaded.rules,
    backendKind: 'memory',
    throttle,
    paths: Array.from({ length: paths }, (_, i) => pathOf(i)),
    backoffs,
    suspensions: [],
    denied: new Map(),
    waiting: new Map(),
    rateKeyFor: (rule, publicId, mxHost) => `${rule.name}|id${publicId}|${mxHost}`,
    effectiveRate: (rule) => rule.maxMessagesPerHour,
    maxConnections: (rule) => rule.maxConnections,
  };
  return buildSnapshot(input);
}

it('reads each backoff once per snapshot, not once per path and rate key (50,000 small domains)', async () => {
  const rateKeyOf = (i: number) => `generic|id1|mx.company${i}.example`;
  let keyReads = 0;
  // One small domain in ten told to slow down: a backoff on its MX host's rate key.
  const backoffs: ActiveBackoff[] = Array.from({ length: 100 }, (_, n) => {
    const key = rateKeyOf(n * 10);
    return {
      get key() {
        keyReads++;
        return key;
      },
      rule: 'rate-limited-421',
      factor: 0.5,
      limits: ['rate'],
      since: 0,
      triggeredAt: 0,
      until: 60_000,
      evidence: { matches: 1, firstAt: 0, lastAt: 0, replies: ['421 4.7.0 Try again later'] },
    };
  });
  const snapshot = await snapshotOf(1000, backoffs, { connections: {}, rates: {} });
  expect(keyReads).toBe(backoffs.length);
  expect(snapshot.rules.find((r) => r.rateKey === rateKeyOf(10))?.backoffs).toEqual(['rate-limited-421']);
  expect(snapshot.rules.find((r) => r.rateKey === rateKeyOf(11))?.backoffs).toEqual([]);
});

it('carries the throttle figures of the listed rate keys and paths only', async () => {
  const throttle: ThrottleSnapshot = { connections: {}, rates: {} };
  for (let i = 0; i < 1000; i++) {
    const rateKey = `generic|id1|mx.company${i}.example`;
    throttle.rates[rateKey] = { bookedUntil: 2_000 };
    throttle.connections[`${rateKey}|${pathOf(i).mxIp}`] = 1;
  }
  const snapshot = await snapshotOf(1000, [], throttle);
  expect(snapshot.omitted).toMatchObject({ paths: 1000 - snapshotRowLimit, rules: 1000 - snapshotRowLimit });
  expect(Object.keys(snapshot.throttle.rates).sort()).toEqual(snapshot.rules.map((r) => r.rateKey).sort());
  expect(Object.keys(snapshot.throttle.connections)).toHaveLength(snapshotRowLimit);
  for (const path of snapshot.paths) expect(snapshot.throttle.connections[`${path.rateKey}|${path.mxIp}`]).toBe(1);
});

it('lists the most relevant rows past the limit, with rule totals over every path of a rate key', async () => {
  const paths = 2 * snapshotRowLimit;
  const loaded = await loadRuleTexts([{ file: 'test.yaml', text: pack }]);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.issues));
  // Paths 0-9 share one MX host (one rate key); path 7 was refused a connection; paths 5 and 600 wait.
  const stats = Array.from({ length: paths }, (_, i) => ({
    ...pathOf(i),
    mxHost: i < 10 ? 'mx.shared.example' : `mx.company${i}.example`,
    messages: i < 10 ? 2 : 1,
    openConnections: i === 3 ? 1 : 0,
  }));
  const snapshot = buildSnapshot({
    nodeId: 'n1',
    now: 1_000,
    periodMs: 3_600_000,
    rules: loaded.rules,
    backendKind: 'memory',
    throttle: { connections: {}, rates: {} },
    paths: stats,
    backoffs: [],
    suspensions: [],
    denied: new Map([[stats[7]!.pathId, { limit: 'maxConnections', at: 900 }]]),
    waiting: new Map([
      [stats[600]!.pathId, { count: 3, at: 900 }],
      [stats[5]!.pathId, { count: 2, at: 900 }],
    ]),
    rateKeyFor: (rule, publicId, mxHost) => `${rule.name}|id${publicId}|${mxHost}`,
    effectiveRate: (rule) => rule.maxMessagesPerHour,
    maxConnections: (rule) => rule.maxConnections,
  });
  expect(snapshot.omitted).toEqual({
    paths: paths - snapshotRowLimit,
    rules: paths - 9 - snapshotRowLimit,
    throttledPaths: 0,
  });
  // Held back, waiting, open, then busiest (the shared host's), then the first ones: in the counters' order.
  const listed = snapshot.paths.map((p) => Number(p.mxIp.split('.')[3]) + 256 * Number(p.mxIp.split('.')[2]));
  expect(listed.slice(0, 12)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  expect(listed).toContain(600);
  expect(listed).toHaveLength(snapshotRowLimit);
  expect(snapshot.paths.find((p) => p.pathId === stats[7]!.pathId)).toMatchObject({ binding: 'maxConnections' });
  expect(snapshot.paths.find((p) => p.pathId === stats[600]!.pathId)).toMatchObject({ waiting: 3, binding: 'none' });
  const shared = snapshot.rules.find((r) => r.rateKey === 'generic|id1|mx.shared.example');
  expect(shared).toMatchObject({ messages: 20, openConnections: 1, waiting: 2, binding: 'maxConnections' });
  expect(shared?.bindingReason).toBe('0/4 connections open');
  // Among rate keys as relevant, the first by name: company520 comes before company60.
  const keys = snapshot.rules.map((r) => r.rateKey);
  expect(keys).toContain('generic|id1|mx.company520.example');
  expect(keys).not.toContain('generic|id1|mx.company60.example');
  expect(keys).toEqual([...keys].sort((a, b) => a.localeCompare(b)));
  expect(snapshot.rules.find((r) => r.rateKey === 'generic|id1|mx.company600.example')?.waiting).toBe(3);
});
