import ipaddr from 'ipaddr.js';

// The key a per-client limit counts under. An IPv4 client has one address; an IPv6 client is handed
// a whole /64 (a home line, a cloud VM) and picks any of its 2^64 addresses for each connection, so
// a limit keyed on the full IPv6 address limits nobody. IPv6 clients are counted by their network
// prefix (/64 unless configured otherwise), and an IPv4-mapped address (::ffff:192.0.2.1, what a
// dual-stack listener sees of an IPv4 client) by its IPv4 address.

/** Prefix length IPv6 clients are counted by when none is configured: the subnet one host is given. */
export const defaultIpv6PrefixLength = 64;

/**
 * The address of `203.0.113.5:4711` or `[2001:db8::1]:4711`: some proxies (Azure Application
 * Gateway) forward the client's port with its address in X-Forwarded-For, and a key per port gave
 * each new connection of a client a new allowance.
 */
function withoutPort(address: string): string | undefined {
  if (!/:\d+$/.test(address)) return undefined;
  try {
    const { hostname } = new URL(`http://${address}`);
    const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    return ipaddr.isValid(bare) ? bare : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `192.0.2.1` for an IPv4 client (mapped or not), `2001:db8:1:2::/64` for any address of that IPv6
 * network, with or without a port; anything that is not an IP address (a test's name, '') is returned as it is.
 */
export function clientKey(address: string, ipv6PrefixLength = defaultIpv6PrefixLength): string {
  if (!Number.isInteger(ipv6PrefixLength) || ipv6PrefixLength < 0 || ipv6PrefixLength > 128)
    throw new RangeError(`an IPv6 prefix length is 0 to 128, not ${ipv6PrefixLength}`);
  const bare = ipaddr.isValid(address) ? address : withoutPort(address);
  if (bare === undefined) return address;
  const parsed = ipaddr.process(bare);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const mask = ipaddr.IPv6.subnetMaskFromPrefixLength(ipv6PrefixLength).toByteArray();
  const network = parsed.toByteArray().map((byte, index) => byte & (mask[index] ?? 0));
  return `${new ipaddr.IPv6(network).toString()}/${ipv6PrefixLength}`;
}
