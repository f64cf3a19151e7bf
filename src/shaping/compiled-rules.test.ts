import { expect, it } from 'vitest';
import { compileRules } from './compiled-rules.ts';
import { compileMask, type HostMask } from './mask.ts';
import type { MxRule } from './rule-pack.ts';

function rule(name: string, masks: string[], extra: Partial<MxRule> = {}): MxRule {
  return {
    name,
    masks,
    publicIds: [],
    shared: false,
    perMxHost: false,
    maxConnections: 5,
    maxMessagesPerHour: 3_000,
    maxMessagesPerConnection: 100,
    timeouts: {},
    tls: 'opportunistic',
    source: { file: 'test.yaml', line: 1 },
    ...extra,
  };
}

it('remembers the rule of each MX host of a list of 20,000 small company domains', () => {
  let maskTests = 0;
  const countedMask = (mask: string): HostMask => {
    const compiled = compileMask(mask);
    return {
      source: compiled.source,
      matchesEverything: compiled.matchesEverything,
      test(host) {
        maskTests++;
        return compiled.test(host);
      },
    };
  };
  const rules = compileRules({
    version: 't',
    files: [],
    rules: [rule('google', ['*.google.com']), rule('generic', ['*'], { perMxHost: true })],
    backoff: [],
    compileHostMask: countedMask,
  });
  const hosts = Array.from({ length: 20_000 }, (_, i) => `mx.company${i}.example`);
  for (const host of hosts) expect(rules.match(host, 1).name).toBe('generic');
  const firstRound = maskTests;
  expect(firstRound).toBeGreaterThanOrEqual(hosts.length);
  // The send path asks again for every message: answered from memory, no mask tested.
  for (const host of hosts) expect(rules.match(host, 1).name).toBe('generic');
  expect(maskTests).toBe(firstRound);
  expect(rules.match('gmail-smtp-in.l.google.com', 1).name).toBe('google');
});
