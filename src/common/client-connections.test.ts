import { describe, expect, it } from 'vitest';
import { createClientConnections } from './client-connections.ts';

describe('createClientConnections', () => {
  it('caps the connections of one client address, and frees a slot as one closes', () => {
    const connections = createClientConnections(2);
    expect(['192.0.2.1', '192.0.2.1', '192.0.2.1'].map((a) => connections.open(a))).toEqual([true, true, false]);
    expect(connections.open('192.0.2.2')).toBe(true);
    connections.close('192.0.2.1');
    expect(connections.open('192.0.2.1')).toBe(true);
    expect(connections.clients).toBe(2);
  });

  it('counts every address of an IPv6 /64 as one client, and an IPv4-mapped address as its IPv4 one', () => {
    const connections = createClientConnections(5);
    const addresses = Array.from({ length: 60 }, (_, i) => `2001:db8:1:2::${(i + 1).toString(16)}`);
    // Before: 60 idle connections from 60 addresses of one /64, all admitted (maxClients is 50).
    expect(addresses.filter((a) => connections.open(a))).toHaveLength(5);
    expect(connections.open('2001:db8:1:3::1')).toBe(true);
    for (const address of addresses.slice(0, 5)) connections.close(address);
    expect(connections.clients).toBe(1);
    expect(['192.0.2.1', '::ffff:192.0.2.1', '::FFFF:c000:201'].map((a) => connections.open(a))).toEqual([
      true,
      true,
      true,
    ]);
    const single = createClientConnections(1);
    expect([single.open('::ffff:192.0.2.1'), single.open('192.0.2.1')]).toEqual([true, false]);
  });

  it('counts by the prefix length given', () => {
    const connections = createClientConnections(1, 48);
    expect([connections.open('2001:db8:7:1::1'), connections.open('2001:db8:7:ffff::1')]).toEqual([true, false]);
    expect(connections.open('2001:db8:8::1')).toBe(true);
  });
});
