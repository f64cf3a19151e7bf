import { describe, expect, it } from 'vitest';
import { addressMatcher, proxyListSchema } from './connection-limits.ts';

describe('addressMatcher', () => {
  it('matches addresses, CIDR ranges and named ranges, an IPv4-mapped address as IPv4', () => {
    const proxies = addressMatcher(['192.0.2.10', '10.1.0.0/16', '2001:db8::/32', 'loopback']);
    const cases: Array<[string, boolean]> = [
      ['192.0.2.10', true],
      ['::ffff:192.0.2.10', true],
      ['192.0.2.11', false],
      ['10.1.200.3', true],
      ['10.2.0.1', false],
      ['2001:db8:5::1', true],
      ['2001:db9::1', false],
      ['127.0.0.2', true],
      ['::1', true],
      ['not an address', false],
    ];
    expect(cases.map(([address]) => [address, proxies(address)])).toEqual(cases);
  });

  it('uniquelocal covers the private ranges; an empty list matches nothing', () => {
    const local = addressMatcher(['uniquelocal']);
    expect(['172.20.1.1', '192.168.1.1', 'fd00::1', '8.8.8.8'].map(local)).toEqual([true, true, true, false]);
    expect(addressMatcher([])('127.0.0.1')).toBe(false);
  });

  it('refuses a name in the configuration', () => {
    expect(proxyListSchema.safeParse(['proxy.internal']).error?.issues[0]?.message).toMatch(/an IP address or a CIDR/);
  });
});
