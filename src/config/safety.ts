import { maskUrl } from '../common/mask-url.ts';
import type { HeraldConfig } from './schema.ts';

// Settings that validate but are unsafe for real mail: the defaults are made for the demo and the
// simulator (tracking on 127.0.0.1, a `.invalid` bounce domain, EHLO `localhost`, no DKIM). Named
// before mail goes out by `config check`, `herald start` (refused with --strict) and `herald doctor`.
// Pure: what needs I/O (DNS, the deliveries being sent) is passed in as facts.

export interface ConfigWarning {
  /** Stable id of the warning (--json contract). */
  id:
    | 'tracking-base-url-loopback'
    | 'tracking-base-url-http'
    | 'bounce-domain-reserved'
    | 'bounce-domain-unresolvable'
    | 'helo-name-not-public'
    | 'dkim-missing'
    | 'resolver-reaches-internet'
    | 'mid-unsigned-answers'
    | 'unsubscribe-under-30-days';
  /** The configuration key to change. */
  key: string;
  message: string;
  fix: string;
}

export interface SafetyFacts {
  /** From domains of the deliveries about to be sent (prepared, scheduled, in progress); undefined = unknown. */
  fromDomains?: string[];
  /** Whether the bounce domain has an MX or address record; undefined = not looked up. */
  bounceDomainResolves?: boolean;
}

/** Days an opt-out must keep working after the message was sent (CAN-SPAM). */
const unsubscribeMinimumDays = 30;

// RFC 2606 / RFC 6761 names that never resolve on the Internet.
const reservedSuffixes = ['.invalid', '.test', '.localhost', '.example', '.local', '.internal', '.lan', '.home.arpa'];

export function isReservedDomain(domain: string): boolean {
  const name = domain.toLowerCase().replace(/\.$/, '');
  return (
    name === 'localhost' ||
    reservedSuffixes.some((suffix) => name.endsWith(suffix) || name === suffix.slice(1)) ||
    /^example\.(com|net|org)$/.test(name)
  );
}

/** Loopback, unspecified, private or link-local addresses, and names that mean this machine. */
export function isLocalHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (name === 'localhost' || name.endsWith('.localhost') || name === '::1' || name === '::' || name === '0.0.0.0')
    return true;
  const v4 = name.match(/^(\d+)\.(\d+)\.\d+\.\d+$/);
  if (!v4) return name.startsWith('fe80:') || name.startsWith('fc') || name.startsWith('fd');
  const [a, b] = [Number(v4[1]), Number(v4[2])];
  return a === 127 || a === 10 || (a === 192 && b === 168) || (a === 172 && b >= 16 && b <= 31) || a === 169;
}

function isPublicHeloName(name: string): boolean {
  return name.includes('.') && !/^[\d.]+$/.test(name) && !name.includes(':') && !isReservedDomain(name);
}

/** The base URL written into messages: tracking.baseUrl, or http://host:port when unset. */
export function effectiveTrackingBaseUrl(config: HeraldConfig): string {
  return config.tracking.baseUrl || `http://${config.tracking.host}:${config.tracking.port}`;
}

export function checkConfigSafety(config: HeraldConfig, facts: SafetyFacts = {}): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const baseUrl = effectiveTrackingBaseUrl(config);
  let parsed: URL | undefined;
  try {
    parsed = new URL(baseUrl);
  } catch {
    parsed = undefined;
  }
  if (!parsed || isLocalHost(parsed.hostname))
    warnings.push({
      id: 'tracking-base-url-loopback',
      key: 'tracking.baseUrl',
      message: `tracking links, the open pixel and List-Unsubscribe point at ${baseUrl}${config.tracking.baseUrl ? '' : ' (tracking.baseUrl is unset)'}: recipients cannot reach it`,
      fix: 'set tracking.baseUrl to the public https:// address of the tracking server',
    });
  else if (parsed.protocol !== 'https:')
    warnings.push({
      id: 'tracking-base-url-http',
      key: 'tracking.baseUrl',
      message: `tracking.baseUrl ${baseUrl} is not HTTPS: mail clients warn on, or block, plain-http links and one-click unsubscribe (RFC 8058) needs https`,
      fix: 'serve the tracking server behind TLS and set tracking.baseUrl to its https:// address',
    });

  const bounceDomain = config.mta.bounceDomain;
  if (isReservedDomain(bounceDomain))
    warnings.push({
      id: 'bounce-domain-reserved',
      key: 'mta.bounceDomain',
      message: `the envelope sender is bounce+N@${bounceDomain}, a reserved name that never resolves: receivers reject or junk mail whose Return-Path domain does not exist, and no bounce can come back`,
      fix: 'set mta.bounceDomain to a domain you own whose MX points at the inbound role',
    });
  else if (facts.bounceDomainResolves === false)
    warnings.push({
      id: 'bounce-domain-unresolvable',
      key: 'mta.bounceDomain',
      message: `mta.bounceDomain ${bounceDomain} has no MX or address record: receivers reject mail whose Return-Path domain does not resolve, and no bounce can come back`,
      fix: `publish an MX record for ${bounceDomain} pointing at the inbound role`,
    });

  const heloNames = [
    { key: 'mta.heloName', name: config.mta.heloName },
    ...config.shaping.affinities.flatMap((affinity, a) =>
      affinity.addresses.map((address, i) => ({
        key: `shaping.affinities[${a}].addresses[${i}].heloName`,
        name: address.heloName,
      })),
    ),
  ];
  for (const { key, name } of heloNames)
    if (!isPublicHeloName(name))
      warnings.push({
        id: 'helo-name-not-public',
        key,
        message: `EHLO announces "${name}", not a public host name: many receivers reject or score down an EHLO that is not a fully qualified name matching the sending address's reverse DNS`,
        fix: `set ${key} to the host name the sending IP's PTR record gives`,
      });

  const signed = new Set(config.mta.dkim.map((key) => key.domain.toLowerCase()));
  if (facts.fromDomains === undefined || facts.fromDomains.length === 0) {
    if (signed.size === 0)
      warnings.push({
        id: 'dkim-missing',
        key: 'mta.dkim',
        message:
          'no DKIM key is configured: unsigned bulk mail fails DMARC at Gmail, Yahoo and Microsoft and lands in spam or is rejected',
        fix: 'add an mta.dkim entry (domain, selector, privateKeyFile) per From domain and publish its public key in DNS',
      });
  } else {
    const unsigned = [...new Set(facts.fromDomains.map((d) => d.toLowerCase()))].filter((d) => !signed.has(d)).sort();
    for (const domain of unsigned)
      warnings.push({
        id: 'dkim-missing',
        key: 'mta.dkim',
        message: `deliveries send From ${domain} and no DKIM key signs for it: unsigned bulk mail fails DMARC and lands in spam or is rejected`,
        fix: `add an mta.dkim entry for domain ${domain} and publish its public key in DNS`,
      });
  }

  const routes = config.mta.routes;
  const resolvers = config.mta.resolverServers;
  const simulated = routes.length > 0 && routes.every((route) => isLocalHost(route.host));
  if (simulated && resolvers.some((server) => !isLocalHost(server.replace(/:\d+$/, ''))))
    warnings.push({
      id: 'resolver-reaches-internet',
      key: 'mta.resolverServers',
      message: `every mta.routes entry points at this machine (a simulator), but mta.resolverServers ${resolvers.join(', ')} is a public resolver: recipients outside the routes are looked up in public DNS and mailed over the Internet`,
      fix: 'point mta.resolverServers at the simulator resolver (the line `herald sim start` prints)',
    });
  else if (simulated && resolvers.length === 0)
    warnings.push({
      id: 'resolver-reaches-internet',
      key: 'mta.resolverServers',
      message:
        'every mta.routes entry points at this machine (a simulator), but mta.resolverServers is empty: recipients outside the routes are looked up with the system resolver and mailed over the Internet',
      fix: 'point mta.resolverServers at the simulator resolver (the line `herald sim start` prints), or remove the routes for real sending',
    });

  // CAN-SPAM (15 U.S.C. 7704(a)(3)) wants an opt-out working for at least 30 days after sending; the
  // unsubscribe link stops verifying after tokenTtlDays, after keyGraceDays once its key is rotated,
  // and finds no recipient once the delivery logs are purged.
  const unsubscribeLimits = [
    { key: 'tracking.tokenTtlDays', days: config.tracking.tokenTtlDays, why: 'its token expires' },
    { key: 'tracking.keyGraceDays', days: config.tracking.keyGraceDays, why: 'a key rotation retires its token' },
    {
      key: 'workflows.cleanup.deliveryLogsDays',
      days: config.workflows.cleanup.deliveryLogsDays,
      why: 'its delivery log is purged',
    },
  ];
  for (const { key, days, why } of unsubscribeLimits)
    if (days < unsubscribeMinimumDays)
      warnings.push({
        id: 'unsubscribe-under-30-days',
        key,
        message: `${key} is ${days}: an unsubscribe link stops working ${days} days after sending (${why}), before the 30 days the law requires an opt-out to keep working (CAN-SPAM)`,
        fix: `set ${key} to ${unsubscribeMinimumDays} or more`,
      });

  if (config.midsourcing.mode === 'marketing')
    config.midsourcing.peers.forEach((peer, index) => {
      if (peer.acceptUnsignedAnswers)
        warnings.push({
          id: 'mid-unsigned-answers',
          key: `midsourcing.peers[${index}].acceptUnsignedAnswers`,
          message: `answers of execution peer ${peer.name} are believed without their signature: anything answering on ${peer.url ? maskUrl(peer.url) : 'its url'} can acknowledge parts that never arrived and report outcomes`,
          fix: `upgrade ${peer.name} to a Herald that signs its answers, then remove acceptUnsignedAnswers from its midsourcing.peers entry`,
        });
    });
  return warnings;
}

/** "example.com" from "News <news@example.com>" or "news@example.com". */
export function domainOfAddress(address: string): string | undefined {
  const match = address.match(/@([^>\s]+)>?\s*$/);
  return match?.[1]?.toLowerCase();
}
