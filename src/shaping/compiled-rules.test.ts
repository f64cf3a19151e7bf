import { expect, it } from 'vitest';
import { compileRules } from './compiled-rules.ts';
import { compileMask, type HostMask } from './mask.ts';
import type { MxRule } from './rule-pack.ts';

function countingMasks() {
  const counter = { tests: 0 };
  const compileHostMask = (mask: string): HostMask => {
    const compiled = compileMask(mask);
    return {
      ...compiled,
      test(host) {
        counter.tests++;
        return compiled.test(host);
      },
      testNormalized(host) {
        counter.tests++;
        return compiled.testNormalized(host);
      },
    };
  };
  return { counter, compileHostMask };
}

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
      ...compiled,
      test(host) {
        maskTests++;
        return compiled.test(host);
      },
      testNormalized(host) {
        maskTests++;
        return compiled.testNormalized(host);
      },
    };
  };
  const rules = compileRules({
    version: 't',
    files: [],
    // One mask that cannot be looked up by its end: tested for each host met.
    rules: [
      rule('google', ['*.google.com', 'gmail-smtp-?n.l.google.com']),
      rule('generic', ['*'], { perMxHost: true }),
    ],
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

it('finds the rule of a new MX host among 2,000 site rules without testing their masks one by one', () => {
  const { counter, compileHostMask } = countingMasks();
  const customers = Array.from({ length: 2_000 - 3 }, (_, i) => rule(`customer-${i}`, [`*.customer${i}.example`]));
  const rules = compileRules({
    version: 't',
    files: [],
    rules: [
      rule('google', ['*.google.com', '*.googlemail.com']),
      rule('ovh', ['mx?.mail.ovh.net']),
      ...customers,
      rule('generic', ['*'], { perMxHost: true }),
    ],
    backoff: [],
    compileHostMask,
  });
  expect(rules.match('mx1.customer1500.example', 1).name).toBe('customer-1500');
  expect(rules.match('MX.Customer7.Example.', 1).name).toBe('customer-7');
  expect(rules.match('alt1.aspmx.l.google.com', 1).name).toBe('google');
  expect(rules.match('mx3.mail.ovh.net', 1).name).toBe('ovh');
  expect(rules.match('customer12.example', 1).name).toBe('generic'); // "*." needs a label before
  expect(rules.match('mx.unknown.test', 1).name).toBe('generic');
  // Only the one mask with a wildcard elsewhere than at its start was tested, once per host.
  expect(counter.tests).toBeLessThanOrEqual(6);
});

it('keeps the first rule in the pack order among several matching masks, and each rule to its public ids', () => {
  const rules = compileRules({
    version: 't',
    files: [],
    rules: [
      rule('dedicated', ['*.big.example'], { publicIds: [{ from: 7, to: 7 }] }),
      rule('pattern', ['mx?.big.example']),
      rule('broad', ['*.example']),
      rule('generic', ['*'], { perMxHost: true }),
    ],
    backoff: [],
  });
  expect(rules.match('mx1.big.example', 7).name).toBe('dedicated');
  expect(rules.match('mx1.big.example', 1).name).toBe('pattern');
  expect(rules.match('relay.big.example', 1).name).toBe('broad');
  expect(rules.match('mx.small.test', 1).name).toBe('generic');
});
