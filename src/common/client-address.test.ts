import { describe, expect, it } from 'vitest';
import { clientKey } from './client-address.ts';

describe('clientKey', () => {
  it.each([
    ['192.0.2.1', 64, '192.0.2.1'],
    ['::ffff:192.0.2.1', 64, '192.0.2.1'],
    ['::FFFF:192.0.2.1', 64, '192.0.2.1'],
    ['::ffff:c000:201', 64, '192.0.2.1'],
    ['2001:db8:1:2::1', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', 64, '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0000:0000:0000:0001', 64, '2001:db8:1:2::/64'],
    ['2001:db8:1:3::1', 64, '2001:db8:1:3::/64'],
    ['2001:db8:1:2:3::1', 48, '2001:db8:1::/48'],
    ['2001:db8:1:2:3::1', 56, '2001:db8:1::/56'],
    ['2001:db8:1:ff02:3::1', 56, '2001:db8:1:ff00::/56'],
    ['2001:db8:1:2:3::1', 128, '2001:db8:1:2:3::1/128'],
    ['::1', 64, '::/64'],
    ['fe80::1%eth0', 64, 'fe80::/64'],
    ['203.0.113.5:4711', 64, '203.0.113.5'],
    ['[2001:db8:1:2::1]:4711', 64, '2001:db8:1:2::/64'],
    ['[::ffff:203.0.113.5]:80', 64, '203.0.113.5'],
    ['proxy.internal:8080', 64, 'proxy.internal:8080'],
    ['', 64, ''],
    ['client-a', 64, 'client-a'],
  ])('%s with /%i counts as %s', (address, prefixLength, key) => {
    expect(clientKey(address, prefixLength)).toBe(key);
  });

  it('gives every address of one /64 the same key, and a neighbouring /64 another', () => {
    const keys = new Set(['2001:db8::1', '2001:db8::abcd:1', '2001:db8::ffff:ffff:ffff:fffe'].map((a) => clientKey(a)));
    expect([...keys]).toEqual(['2001:db8::/64']);
    expect(clientKey('2001:db8:0:1::1')).not.toBe('2001:db8::/64');
  });

  it('refuses a prefix length that is not one', () => {
    expect(() => clientKey('::1', 129)).toThrow(/0 to 128, not 129/);
    expect(() => clientKey('::1', 6.5)).toThrow(/not 6.5/);
  });
});
