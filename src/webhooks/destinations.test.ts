import { expect, it } from 'vitest';
import { webhooksSchema } from './config-schema.ts';
import { createDestinationPolicy, hostAddresses, literalAddress, parseNetwork } from './destinations.ts';

// The default destination policy: the host itself, cloud metadata and link-local refused; private
// networks and the Internet allowed; allowedNetworks opens a hole in a denied network.

const defaults = webhooksSchema.parse({});

it.each([
  ['127.0.0.1', '127.0.0.0/8'],
  ['127.0.0.2', '127.0.0.0/8'],
  ['169.254.169.254', '169.254.0.0/16'],
  ['100.100.100.200', '100.100.100.200/32'],
  ['0.0.0.0', '0.0.0.0/8'],
  ['255.255.255.255', '240.0.0.0/4'],
  ['224.0.0.1', '224.0.0.0/4'],
  ['::1', '::1/128'],
  ['::', '::/128'],
  ['fe80::1', 'fe80::/10'],
  ['fd00:ec2::254', 'fd00:ec2::254/128'],
  // IPv4-mapped IPv6 reaches the IPv4 address: matched by the IPv4 networks.
  ['::ffff:169.254.169.254', '169.254.0.0/16'],
  ['::ffff:7f00:1', '127.0.0.0/8'],
])('refuses %s by default (%s)', (address, network) => {
  expect(createDestinationPolicy(defaults).refusal(address)).toBe(
    `${address} is in webhooks.deniedNetworks (${network}); add it to webhooks.allowedNetworks to allow it`,
  );
});

it.each(['10.1.2.3', '172.16.0.9', '192.168.1.10', 'fd12:3456::1', '93.184.215.14', '2606:2800:21f:cb07::1'])(
  'allows %s by default',
  (address) => {
    expect(createDestinationPolicy(defaults).refusal(address)).toBeUndefined();
  },
);

it('lets allowedNetworks open a hole in a denied network, and denies what an operator adds', () => {
  const policy = createDestinationPolicy(
    webhooksSchema.parse({
      allowedNetworks: ['127.0.0.1', '10.1.2.0/24'],
      deniedNetworks: [...defaults.deniedNetworks, '10.0.0.0/8'],
    }),
  );
  expect(policy.refusal('127.0.0.1')).toBeUndefined();
  expect(policy.refusal('127.0.0.2')).toContain('(127.0.0.0/8)');
  expect(policy.refusal('10.1.2.3')).toBeUndefined();
  expect(policy.refusal('10.9.9.9')).toContain('(10.0.0.0/8)');
});

it('refuses a network that does not parse, naming it', () => {
  expect(() => parseNetwork('10.0.0.0/33')).toThrow('"10.0.0.0/33": the prefix length must be 0 to 32');
  expect(() => parseNetwork('::1/-1')).toThrow('"::1/-1": the prefix length must be 0 to 128');
  expect(() => parseNetwork('intranet/8')).toThrow('"intranet/8": intranet is not an IPv4 or IPv6 address');
  const parsed = webhooksSchema.safeParse({ allowedNetworks: ['10.0.0.0/8', 'nope'] });
  expect(parsed.error?.issues).toEqual([
    expect.objectContaining({ path: ['allowedNetworks', 1], message: '"nope": nope is not an IPv4 or IPv6 address' }),
  ]);
});

it('reads the literal address of a URL, brackets and shorthand forms included', () => {
  expect(literalAddress(new URL('http://[::1]:8080/hook'))).toBe('::1');
  expect(literalAddress(new URL('http://2130706433/'))).toBe('127.0.0.1');
  expect(literalAddress(new URL('http://0x7f.1/'))).toBe('127.0.0.1');
  expect(literalAddress(new URL('https://crm.example/hook'))).toBeUndefined();
});

it("refuses this host's own addresses like loopback (a service on 0.0.0.0 answers on them), unless allowed", () => {
  const own = ['192.0.2.2', 'fd00::2'];
  // Before: 192.0.2.2, a documentation-range stand-in for the host's LAN address, was allowed.
  expect(createDestinationPolicy(defaults, own).refusal('192.0.2.2')).toBe(
    '192.0.2.2 is an address of this host (refused like loopback); add it to webhooks.allowedNetworks to allow it',
  );
  expect(createDestinationPolicy(defaults, own).refusal('::ffff:192.0.2.2')).toContain('an address of this host');
  expect(createDestinationPolicy(defaults, own).refusal('fd00::2')).toContain('an address of this host');
  expect(createDestinationPolicy(defaults, own).refusal('192.0.2.3')).toBeUndefined();
  const allowed = createDestinationPolicy(webhooksSchema.parse({ allowedNetworks: ['192.0.2.0/24'] }), own);
  expect(allowed.refusal('192.0.2.2')).toBeUndefined();
  expect(hostAddresses()).toContain('127.0.0.1');
});
