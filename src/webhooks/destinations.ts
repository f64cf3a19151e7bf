import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';

// Which addresses webhook requests may connect to. A subscription is made by whoever holds an admin
// token, and its delivery status and timing are shown back to them: without a limit, a URL naming
// 169.254.169.254 (the cloud metadata service), loopback or any internal host made Herald a probe of
// the networks it can reach (server-side request forgery). The check is made on the address a request
// actually connects to (post-webhook.ts), after DNS, so a name resolving to a denied address is
// refused like the address itself.

export interface DestinationNetworks {
  /** CIDR networks (or single addresses) a webhook may never connect to, unless allowed below. */
  deniedNetworks: readonly string[];
  /** CIDR networks (or single addresses) allowed even inside a denied network. */
  allowedNetworks: readonly string[];
}

export interface DestinationPolicy {
  /** Why a connection to this IP address is refused, or undefined when it is allowed. */
  refusal(address: string): string | undefined;
}

interface Network {
  text: string;
  list: BlockList;
}

/** `10.0.0.0/8`, `fd00:ec2::254/128` or a bare address; the error names what is wrong. */
export function parseNetwork(text: string): Network {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const type = isIP(address) === 4 ? 'ipv4' : isIP(address) === 6 ? 'ipv6' : undefined;
  if (!type) throw new Error(`"${text}": ${address} is not an IPv4 or IPv6 address`);
  const maxPrefix = type === 'ipv4' ? 32 : 128;
  const prefixText = slash === -1 ? String(maxPrefix) : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > maxPrefix)
    throw new Error(`"${text}": the prefix length must be 0 to ${maxPrefix}`);
  const list = new BlockList();
  list.addSubnet(address, prefix, type);
  return { text, list };
}

/** The addresses of this host's interfaces: a service listening on all of them is reached by any. */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((entries) => (entries ?? []).map((entry) => entry.address));
}

/**
 * `ownAddresses` (hostAddresses() in production) are refused like loopback: a service listening on
 * every interface (0.0.0.0) is reached at the host's LAN address as well, which a private network
 * allowed by default would let through.
 */
export function createDestinationPolicy(
  networks: DestinationNetworks,
  ownAddresses: readonly string[] = [],
): DestinationPolicy {
  const denied = networks.deniedNetworks.map(parseNetwork);
  const allowed = networks.allowedNetworks.map(parseNetwork);
  const host = new BlockList();
  for (const address of ownAddresses) host.addAddress(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  // BlockList matches an IPv4-mapped IPv6 address (::ffff:127.0.0.1) against IPv4 networks too.
  const within = (list: Network[], address: string, type: 'ipv4' | 'ipv6') =>
    list.find((network) => network.list.check(address, type));
  return {
    refusal(address) {
      const type = isIP(address) === 4 ? 'ipv4' : isIP(address) === 6 ? 'ipv6' : undefined;
      if (!type) return `${address} is not an IP address`;
      if (within(allowed, address, type)) return undefined;
      const network = within(denied, address, type);
      if (network)
        return `${address} is in webhooks.deniedNetworks (${network.text}); add it to webhooks.allowedNetworks to allow it`;
      if (host.check(address, type))
        return `${address} is an address of this host (refused like loopback); add it to webhooks.allowedNetworks to allow it`;
      return undefined;
    },
  };
}

/** The IP address a URL names literally (`http://[::1]/`, `http://10.0.0.1/`), or undefined for a name. */
export function literalAddress(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) ? host : undefined;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Seam for tests: the addresses a host name resolves to (default: the system resolver, like fetch). */
export type ResolveHost = (hostname: string) => Promise<ResolvedAddress[]>;

const systemResolve: ResolveHost = (hostname) => dnsLookup(hostname, { all: true });

/**
 * The `lookup` of node:http(s) requests whose destination must pass the policy: the socket connects
 * to the addresses checked here and to no other (a literal address in a URL skips lookup: check it
 * with literalAddress). Only the allowed addresses of a name are returned; none: error
 * DESTINATION_DENIED naming why.
 */
export function createCheckedLookup(policy: DestinationPolicy, resolve: ResolveHost = systemResolve): LookupFunction {
  return (hostname, lookupOptions, callback) => {
    resolve(hostname).then(
      (addresses) => {
        const usable = addresses.filter((entry) => policy.refusal(entry.address) === undefined);
        if (usable.length === 0) {
          const reasons = addresses.map((entry) => policy.refusal(entry.address)).join('; ');
          const error: NodeJS.ErrnoException = new Error(
            addresses.length === 0
              ? `${hostname} has no address`
              : `${hostname} resolves only to refused addresses: ${reasons}`,
          );
          error.code = addresses.length === 0 ? 'ENOTFOUND' : 'DESTINATION_DENIED';
          callback(error, '', 0);
        } else if (lookupOptions.all) callback(null, usable);
        else callback(null, usable[0]!.address, usable[0]!.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, '', 0),
    );
  };
}
