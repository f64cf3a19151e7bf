import { describe, expect, it } from 'vitest';
import { formatEta } from '../cli/delivery-eta-command.ts';
import { compileRules } from '../shaping/compiled-rules.ts';
import { etaListedDomains, etaListedGroups, etaView } from './delivery-eta.ts';
import { estimateFinish } from './eta.ts';

const now = Date.UTC(2026, 5, 1, 12);

const rules = compileRules({
  version: 't',
  files: [],
  rules: [
    {
      name: 'google',
      masks: ['*.google.test'],
      publicIds: [],
      shared: false,
      perMxHost: false,
      maxConnections: 10,
      maxMessagesPerHour: 1_000,
      maxMessagesPerConnection: 100,
      timeouts: {},
      tls: 'opportunistic',
      source: { file: 'test.yaml', line: 1 },
    },
    {
      name: 'generic',
      masks: ['*'],
      publicIds: [],
      shared: false,
      perMxHost: true,
      maxConnections: 5,
      maxMessagesPerHour: 3_000,
      maxMessagesPerConnection: 50,
      timeouts: {},
      tls: 'opportunistic',
      source: { file: 'test.yaml', line: 2 },
    },
  ],
  backoff: [],
});

describe('etaView and formatEta', () => {
  it('list the slowest rate keys and count the others; a rate key lists its first domains and counts them all', () => {
    // A B2B list: 100 company domains on their own MX hosts (one generic rate key each) and 30
    // domains hosted by Google (one rate key for all of them).
    const domains = [
      ...Array.from({ length: 100 }, (_, i) => ({
        domain: `company${i}.test`,
        pending: 10 + i,
        mxHost: `mx.company${i}.test`,
        sent: 0,
        deferred: 0,
      })),
      ...Array.from({ length: 30 }, (_, i) => ({
        domain: `hosted${i}.test`,
        pending: 100,
        mxHost: 'aspmx.l.google.test',
        sent: 0,
        deferred: 0,
      })),
    ];
    const eta = estimateFinish({
      now,
      deliveryId: 9,
      validUntil: null,
      domains,
      sources: [{ publicId: 0, weight: 1 }],
      rules,
      ratePeriodMs: 3_600_000,
      backoffFactors: new Map(),
    });
    expect(eta.groups).toHaveLength(101);

    const view = etaView(eta);
    expect(view.groups).toHaveLength(etaListedGroups);
    expect(view.groupsOmitted).toBe(101 - etaListedGroups);
    expect(view.groups[0]).toMatchObject({ rateKey: 'google|id0', domainCount: 30 });
    expect(view.groups[0]!.domains).toHaveLength(etaListedDomains);
    expect(view.groups[1]).toMatchObject({ rateKey: 'generic|id0|mx.company99.test', domainCount: 1 });

    const lines = formatEta(eta);
    expect(lines.filter((line) => line.startsWith('  '))).toHaveLength(etaListedGroups + 1);
    expect(lines).toContain(`  … ${101 - etaListedGroups} more rate keys, each finishing sooner than those listed`);
  });
});
