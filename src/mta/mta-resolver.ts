import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { HeraldConfig } from '../config/schema.ts';
import type { StaleEvent } from './dns-cache.ts';
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
    onStale: staleLogger(logger, options.clock),
    maxHosts: config.maxMxHosts,
    allowPrivateAddresses: config.allowPrivateMxAddresses,
    maxConcurrentLookups: config.dnsConcurrency,
  });
  options.shaping?.reportDnsStale?.(() => resolver.staleAnswers());
  return resolver;
}

/** Lines a minute about stale answers at most: a resolver outage makes every domain sent to go stale at once. */
const staleLinesPerMinute = 20;

/** Logs stale answers starting and ending, staleLinesPerMinute a minute; the others are counted, and the count logged with the next minute's first line. */
export function staleLogger(logger: Logger, clock: Clock): (event: StaleEvent) => void {
  let minute = Number.NaN;
  let lines = 0;
  let suppressed = 0;
  return (event) => {
    const now = Math.floor(clock.now() / 60_000);
    if (now !== minute) {
      if (suppressed > 0)
        logger.warn(
          { event: 'mta.dns_stale_suppressed', suppressed },
          `${suppressed} more names started or stopped using a stale DNS answer in the last minute than were logged: herald mx stats lists those in use`,
        );
      minute = now;
      lines = 0;
      suppressed = 0;
    }
    if (lines >= staleLinesPerMinute) suppressed += 1;
    else {
      lines += 1;
      logStale(logger, event);
    }
  };
}

/** One log line per change of state: the operator sees that mail goes to the last known MX hosts, and why. */
function logStale(logger: Logger, event: StaleEvent): void {
  const fields = { event: `mta.dns_stale_${event.state}`, name: event.name, reason: event.reason };
  const since = new Date(event.since).toISOString();
  if (event.state === 'serving')
    logger.warn(
      { ...fields, until: new Date(event.until).toISOString() },
      `DNS fails for ${event.name} (${event.reason}): its last good answer is used until ${new Date(event.until).toISOString()} (mta.mxStaleMaxSeconds)`,
    );
  else if (event.state === 'expired')
    logger.warn(
      fields,
      `DNS still fails for ${event.name} (${event.reason}): its last good answer, used since ${since}, is past mta.mxStaleMaxSeconds; its messages are deferred`,
    );
  else logger.info(fields, `DNS answers again for ${event.name}: its last good answer was used since ${since}`);
}
