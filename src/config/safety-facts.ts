import { createDnsClient } from '../mta/mx-resolver.ts';
import { isReservedDomain } from './safety.ts';
import type { HeraldConfig } from './schema.ts';

// The I/O half of the configuration-safety check: does the bounce domain resolve, with the
// resolver the MTA would use. A timeout or an unreachable resolver says nothing (undefined).

export async function bounceDomainResolves(config: HeraldConfig, timeoutMs = 2_000): Promise<boolean | undefined> {
  const domain = config.mta.bounceDomain;
  if (isReservedDomain(domain)) return false;
  const dns = createDnsClient(config.mta.resolverServers, timeoutMs);
  const lookups = [
    dns.resolveMx(domain).then((answers) => answers.length > 0),
    dns.resolve4(domain, { ttl: true }).then((answers) => answers.length > 0),
  ];
  const results = await Promise.allSettled(lookups);
  if (results.some((result) => result.status === 'fulfilled' && result.value)) return true;
  const missing = results.every(
    (result) =>
      result.status === 'fulfilled' ||
      ['ENOTFOUND', 'ENODATA'].includes((result.reason as NodeJS.ErrnoException).code ?? ''),
  );
  return missing ? false : undefined;
}
