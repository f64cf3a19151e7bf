import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import { logStale } from './dns-cache.ts';
import type { MtaShaping } from './dispatch.ts';
import { createDnsClient, createMxResolver, type DnsClient, type MxResolver } from './mx-resolver.ts';
import { compileRoutes } from './routes.ts';

// The MX resolver as an MTA process composes it from `mta.*`: its cache bounds, its log lines when
// a stale answer stands in for a failing DNS, and those names in the node's shaping snapshots
// (`herald mx stats`).

export function createMtaResolver(options: {
  config: HeraldConfig['mta'];
  clock: Clock;
  logger: Logger;
  dns?: DnsClient | undefined;
  shaping?: MtaShaping | undefined;
}): MxResolver {
  const { config, logger } = options;
  const resolver = createMxResolver({
    dns: options.dns ?? createDnsClient(config.resolverServers),
    routes: compileRoutes(config.routes),
    clock: options.clock,
    maxCacheSeconds: config.mxCacheMaxSeconds,
    minCacheSeconds: config.mxCacheMinSeconds,
    mxRecordCacheSeconds: config.mxRecordCacheSeconds,
    negativeCacheSeconds: config.mxNegativeCacheSeconds,
    staleMaxSeconds: config.mxStaleMaxSeconds,
    onStale: (event) => logStale(logger, event),
    maxHosts: config.maxMxHosts,
    allowPrivateAddresses: config.allowPrivateMxAddresses,
    maxConcurrentLookups: config.dnsConcurrency,
  });
  options.shaping?.reportDnsStale?.(() => resolver.staleAnswers());
  return resolver;
}
