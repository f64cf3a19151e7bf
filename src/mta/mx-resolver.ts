import { Resolver } from 'node:dns/promises';
import { BlockList, isIP, isIPv6 } from 'node:net';
import type { Clock } from '../common/clock.ts';
import type { RouteTable, RouteTarget } from './routes.ts';
import { localFailure, type SmtpReply } from '../bounce/smtp-reply.ts';
import { createDnsCache, type CacheLoad, type StaleAnswer, type StaleEvent } from './dns-cache.ts';

// Where to deliver a domain's mail: MX hosts by preference (RFC 5321 §5.1), the domain itself when
// it has no MX, nothing when it publishes a null MX (RFC 7505) or does not exist. Static routes
// come first. Answers are cached for their TTL (dns-cache.ts); the DNS client is a parameter (tests
// point it at the simulator).

export interface DnsClient {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
}

/** Node's resolver on the given servers (`ip` or `ip:port`); the system's when the list is empty. */
export function createDnsClient(servers: readonly string[], timeoutMs = 5_000): DnsClient {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  return resolver;
}

/** One MX host to try, in preference order; `route` overrides where to connect. */
export interface MxHost {
  name: string;
  preference: number;
  route?: RouteTarget;
}

export type MxResolution = { kind: 'hosts'; hosts: MxHost[] } | { kind: 'failure'; reply: SmtpReply };
/** A host's addresses in the order to try them: IPv4 first, then IPv6, each family in DNS order. */
export type AddressResolution = { kind: 'addresses'; addresses: string[] } | { kind: 'failure'; reply: SmtpReply };

export interface MxResolver {
  resolveDomain(domain: string): Promise<MxResolution>;
  /** The IP addresses to connect to for an MX host without a route, in the order to try them. */
  resolveAddresses(host: string): Promise<AddressResolution>;
  /** Names held in the caches (domains and MX hosts), expired ones not yet swept included. */
  cachedNames(): number;
  /** Domains and MX hosts answered from their last good answer because DNS fails for them. */
  staleAnswers(): StaleAnswer[];
}

export interface MxResolverOptions {
  dns: DnsClient;
  routes: RouteTable;
  clock: Clock;
  /** Upper bound on how long a good answer (MX hosts, addresses) is kept, whatever its TTL. */
  maxCacheSeconds: number;
  /** Lower bound on the same (default 60). */
  minCacheSeconds?: number;
  /** How long MX records are kept, within the bounds: node:dns does not give their TTL (default 300). */
  mxRecordCacheSeconds?: number;
  /** How long NXDOMAIN and NODATA answers are kept (default 300; RFC 2308 §5 asks for at most 3 hours). */
  negativeCacheSeconds?: number;
  /** How long past its TTL a good answer stands in while DNS fails (SERVFAIL, timeout) (default 86,400). */
  staleMaxSeconds?: number;
  /** Told when a stale answer starts standing in for a failing lookup, and when it stops. */
  onStale?: (event: StaleEvent) => void;
  /** The most preferred MX hosts kept; the others are never tried (default 5). */
  maxHosts?: number;
  /** DNS queries in flight at most (default 64); the others wait their turn. */
  maxConcurrentLookups?: number;
  /** Connect to MX hosts found in DNS at loopback, private, link-local or unspecified addresses
   *  (default false: refused). Routes are the operator's and always apply. */
  allowPrivateAddresses?: boolean;
  /** Draws in [0, 1) that order MX hosts of equal preference (default Math.random). */
  random?: () => number;
}

/*
 * Addresses no Internet MX has: anyone can publish an MX for their own domain and subscribe one
 * address of it, and an MX at 127.0.0.1, 0.0.0.0, 10.x or 169.254.169.254 had Herald open SMTP
 * sessions to the host itself, the internal network and the cloud metadata service.
 */
const privateIpv4 = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network": 0.0.0.0 reaches the host itself
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 3], // multicast, reserved, broadcast
] as const)
  privateIpv4.addSubnet(network, prefix, 'ipv4');
// A separate list: a BlockList matches IPv4 addresses against its IPv6 rules too.
const privateIpv6 = new BlockList();
for (const [network, prefix] of [
  // Unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d (RFC 4291 §2.5.5.1).
  ['::', 96],
  // IPv4-mapped, however spelled (0:0:0:0:0:ffff:7f00:1 is 127.0.0.1 to connect()): no place in an AAAA.
  ['::ffff:0:0', 96],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const)
  privateIpv6.addSubnet(network, prefix, 'ipv6');

/** Whether no Internet MX has this address. */
export function isPrivateAddress(address: string): boolean {
  return isIPv6(address) ? privateIpv6.check(address, 'ipv6') : privateIpv4.check(address, 'ipv4');
}

// A failed lookup is asked again this soon; while a stale answer stands in, this often (in the
// background, callers are not kept waiting).
const temporaryFailureCacheSeconds = 10;
/** Addresses kept per host name: a hostile zone can answer with hundreds, and only a few are ever tried. */
const maxAddressesKept = 16;
/** MX hosts kept per domain whatever maxHosts: a hostile zone can list thousands at one preference. */
const maxHostsKept = 64;

export function createMxResolver(options: MxResolverOptions): MxResolver {
  const { routes, clock } = options;
  const random = options.random ?? Math.random;
  const maxHosts = options.maxHosts ?? 5;
  const dns = limitedDns(options.dns, options.maxConcurrentLookups ?? 64);
  const minSeconds = options.minCacheSeconds ?? 60;
  const mxRecordSeconds = options.mxRecordCacheSeconds ?? 300;
  const negativeSeconds = options.negativeCacheSeconds ?? 300;
  const cacheOptions = {
    clock,
    staleMaxSeconds: options.staleMaxSeconds ?? 86_400,
    staleRetrySeconds: temporaryFailureCacheSeconds,
    ...(options.onStale && { onStale: options.onStale }),
    lapsed: <T extends MxResolution | AddressResolution>(resolution: T, since: number): T =>
      resolution.kind === 'failure'
        ? {
            ...resolution,
            reply: {
              ...resolution.reply,
              text: `${resolution.reply.text}; the last good answer, used since ${new Date(since).toISOString()} while DNS failed, is past mta.mxStaleMaxSeconds`,
            },
          }
        : resolution,
  };
  const domainCache = createDnsCache<MxResolution>(cacheOptions);
  const addressCache = createDnsCache<AddressResolution>(cacheOptions);

  /** A good answer's TTL within the bounds: a TTL of 0 or 5 s would mean a query per message or two,
   *  a TTL of a week would keep a moved MX for a week. The maximum wins over the minimum. */
  const clamp = (ttl: number) => Math.min(options.maxCacheSeconds, Math.max(minSeconds, ttl));

  async function lookupDomain(domain: string): Promise<CacheLoad<MxResolution>> {
    let records: { exchange: string; priority: number }[];
    try {
      records = await dns.resolveMx(domain);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND')
        return {
          value: failure('domain_not_found', `domain ${domain} does not exist (NXDOMAIN)`, '5.1.2'),
          ttlSeconds: negativeSeconds,
          outcome: 'negative',
        };
      // RFC 5321 §5.1: no MX records at all -> the domain itself is the implicit MX.
      if (code === 'ENODATA') return implicitMx(domain);
      const reason = `MX lookup for ${domain} failed: ${code ?? (error as Error).message}`;
      return temporaryFailure(reason);
    }
    // node:dns gives no TTL for MX records (resolveMx has no `ttl` option, and resolveAny returns
    // it for A/AAAA only, from servers that still answer ANY, RFC 8482): MX answers are kept
    // mxRecordCacheSeconds; a caching resolver in front answers the re-asks by their real TTL.
    const ttlSeconds = clamp(mxRecordSeconds);
    const usable = records.filter((record) => record.exchange !== '' && record.exchange !== '.');
    if (usable.length === 0) {
      if (records.length > 0)
        return {
          value: failure('null_mx', `${domain} publishes a null MX: it accepts no mail (RFC 7505)`, '5.1.10'),
          ttlSeconds,
          outcome: 'negative',
        };
      return implicitMx(domain);
    }
    usable.sort((a, b) => a.priority - b.priority);
    // Each host tried costs up to a connect timeout: an attacker's domain listing 500 silent MX
    // hosts held every message of the attempt (and its room in the MTA's queue) for 500 of them.
    // A host listed twice (at two preferences, or in two spellings) is tried once, at its best
    // preference: a second try of a host that just failed only cost another connect timeout.
    const byName = new Map<string, MxHost>();
    for (const record of usable) {
      const name = record.exchange.toLowerCase().replace(/\.$/, '');
      if (!byName.has(name)) byName.set(name, { name, preference: record.priority });
    }
    const hosts = withinLimit([...byName.values()], maxHosts).map(withRoute);
    return { value: { kind: 'hosts', hosts }, ttlSeconds, outcome: 'good' };
  }

  /** The domain as its own MX, until an MX record appears: kept no longer than a negative answer. */
  async function implicitMx(domain: string): Promise<CacheLoad<MxResolution>> {
    const address = await lookupAddress(domain);
    if (address.value.kind === 'failure') {
      if (address.outcome === 'error') return { ...address, value: address.value };
      return {
        value: failure('domain_not_found', `${domain} has no MX and no A/AAAA record`, '5.1.2'),
        ttlSeconds: negativeSeconds,
        outcome: 'negative',
      };
    }
    return {
      value: { kind: 'hosts', hosts: [withRoute({ name: domain, preference: 0 })] },
      ttlSeconds: Math.min(address.ttlSeconds, negativeSeconds),
      outcome: 'good',
    };
  }

  function withRoute(host: MxHost): MxHost {
    const route = routes.forMxHost(host.name);
    return route ? { ...host, route } : host;
  }

  /**
   * Every address of a host, IPv4 first then IPv6, each family in DNS order (RFC 5321 §5.1: a
   * multihomed host's other addresses are tried when one cannot be reached). Both families are
   * asked at once; an answer from one is enough. Some name servers never answer AAAA queries:
   * the A answer is then cached for its own TTL (the AAAA asked again with it), not for the 10 s of
   * a temporary failure, or every connection to such a host waited for the AAAA timeout (2 tries
   * of mta's 5 s) every 10 s.
   */
  async function lookupAddress(host: string): Promise<CacheLoad<AddressResolution>> {
    const [v4, v6] = await Promise.all([
      addressesOf(() => dns.resolve4(host, { ttl: true })),
      addressesOf(() => dns.resolve6(host, { ttl: true })),
    ]);
    const records = [...(v4.kind === 'records' ? v4.records : []), ...(v6.kind === 'records' ? v6.records : [])];
    const temporary = [v4, v6].find(
      (answer) => answer.kind === 'error' && answer.code !== 'ENODATA' && answer.code !== 'ENOTFOUND',
    );
    if (records.length > 0) {
      const ttlSeconds = clamp(Math.min(...records.map((record) => record.ttl)));
      const addresses = [...new Set(records.map((record) => record.address))].slice(0, maxAddressesKept);
      return { value: { kind: 'addresses', addresses }, ttlSeconds, outcome: 'good' };
    }
    if ([v4, v6].some((answer) => answer.kind === 'error' && answer.code === 'ENOTFOUND'))
      return {
        value: failure('no_address', `${host} does not exist (NXDOMAIN)`, '4.4.4'),
        ttlSeconds: negativeSeconds,
        outcome: 'negative',
      };
    if (temporary?.kind === 'error') return temporaryFailure(`address lookup for ${host} failed: ${temporary.code}`);
    return {
      value: failure('no_address', `${host} has no A or AAAA record`, '4.4.4'),
      ttlSeconds: negativeSeconds,
      outcome: 'negative',
    };
  }

  return {
    resolveDomain(domain) {
      const name = domain.toLowerCase();
      const route = routes.forDomain(name);
      if (route) return Promise.resolve({ kind: 'hosts', hosts: [{ name, preference: 0, route }] });
      // RFC 5321 §4.1.3, §5.1: an address literal (`pat@[192.0.2.1]`) names the host to connect
      // to, with no MX lookup; asked of DNS it failed as EBADNAME, a temporary error, retried until
      // the message expired.
      const literal = addressLiteral(name);
      if (literal) return Promise.resolve({ kind: 'hosts', hosts: [withRoute({ name: literal, preference: 0 })] });
      return domainCache
        .get(name, () => lookupDomain(name))
        .then((resolution) =>
          resolution.kind === 'hosts'
            ? { kind: 'hosts', hosts: shuffleEqualPreferences(resolution.hosts, random).slice(0, maxHosts) }
            : resolution,
        );
    },
    cachedNames: () => domainCache.size() + addressCache.size(),
    staleAnswers: () => [...domainCache.stale(), ...addressCache.stale()],
    async resolveAddresses(host) {
      const literal = addressLiteral(host);
      const resolution: AddressResolution = literal
        ? { kind: 'addresses', addresses: [literal] }
        : await addressCache.get(host.toLowerCase(), () => lookupAddress(host));
      if (resolution.kind === 'failure' || options.allowPrivateAddresses) return resolution;
      const addresses = resolution.addresses.filter((address) => !isPrivateAddress(address));
      if (addresses.length > 0) return { kind: 'addresses', addresses };
      return failure(
        'no_address',
        `${host} resolves to ${resolution.addresses.join(', ')}, loopback, private or link-local addresses: not tried (mta.allowPrivateMxAddresses)`,
        '4.4.4',
      );
    },
  };
}

/**
 * The hosts (sorted by preference) that can be among the `max` tried: the preference group that
 * crosses the limit is kept whole, since the hosts tried are drawn from it at each resolution
 * (six hosts at one preference and maxHosts 5: the sixth in DNS order never got a message), at
 * most maxHostsKept in all.
 */
function withinLimit(hosts: readonly MxHost[], max: number): MxHost[] {
  const kept: MxHost[] = [];
  for (const host of hosts) {
    if (kept.length >= maxHostsKept) break;
    if (kept.length >= max && host.preference !== kept[kept.length - 1]!.preference) break;
    kept.push(host);
  }
  return kept;
}

/**
 * RFC 5321 §5.1: hosts of equal preference MUST be tried in random order, to spread the load over
 * them (Yahoo publishes three MX hosts at preference 1). Each call draws anew: the cached answer
 * sent every message of the hour to the first one DNS listed. Hosts come sorted by preference.
 */
export function shuffleEqualPreferences(hosts: readonly MxHost[], random: () => number): MxHost[] {
  const ordered = [...hosts];
  let start = 0;
  while (start < ordered.length) {
    let end = start + 1;
    while (end < ordered.length && ordered[end]!.preference === ordered[start]!.preference) end++;
    // Fisher–Yates over [start, end).
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      [ordered[i], ordered[j]] = [ordered[j]!, ordered[i]!];
    }
    start = end;
  }
  return ordered;
}

/**
 * The address of a domain literal, or of an MX host written as an IP address (`10 192.0.2.1.`, or bracketed) is not a name (RFC 1035
 * §3.3.9 wants one), but thousands of domains publish one and sendmail delivers to it: asked of
 * DNS as a name it was NXDOMAIN, and every message to the domain was deferred until it expired.
 * The private-address rule applies to it as to any address.
 */
function addressLiteral(host: string): string | undefined {
  const bare = host.replace(/^\[(?:ipv6:)?(.*)\]$/i, '$1').replace(/\.$/, '');
  return isIP(bare) ? bare : undefined;
}

type AddressAnswer = { kind: 'records'; records: { address: string; ttl: number }[] } | { kind: 'error'; code: string };

async function addressesOf(query: () => Promise<{ address: string; ttl: number }[]>): Promise<AddressAnswer> {
  try {
    return { kind: 'records', records: await query() };
  } catch (error) {
    return { kind: 'error', code: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
}

function temporaryFailure<T>(reason: string): CacheLoad<T> {
  return {
    value: failure('dns_temporary', reason, '4.4.3') as T,
    ttlSeconds: temporaryFailureCacheSeconds,
    outcome: 'error',
    reason,
  };
}

function failure(
  local: SmtpReply['local'] & string,
  text: string,
  enhanced: string,
): { kind: 'failure'; reply: SmtpReply } {
  return { kind: 'failure', reply: localFailure(local, text, enhanced) };
}

/**
 * The DNS client with at most `max` queries in flight. A claimed batch of 1,000 messages to 1,000
 * domains sent 1,000 queries at once (5,000 with the queue refilling): a resolver drops what its
 * socket cannot hold, and 14,500 of 20,000 lookups timed out as `dns_temporary` (deferred an hour).
 */
function limitedDns(dns: DnsClient, max: number): DnsClient {
  let active = 0;
  const waiting: Array<() => void> = [];
  async function limited<T>(query: () => Promise<T>): Promise<T> {
    // A finished query hands its slot straight to the next waiting one.
    if (active < max) active++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await query();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  }
  return {
    resolveMx: (name) => limited(() => dns.resolveMx(name)),
    resolve4: (name, options) => limited(() => dns.resolve4(name, options)),
    resolve6: (name, options) => limited(() => dns.resolve6(name, options)),
  };
}
