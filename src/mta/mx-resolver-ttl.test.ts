import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../common/clock.ts';
import { startDnsServer, type DnsRecords, type DnsServer } from '../sim/dns-server.ts';
import type { StaleEvent } from './dns-cache.ts';
import { createDnsClient, createMxResolver, type MxResolver, type MxResolverOptions } from './mx-resolver.ts';
import { compileRoutes } from './routes.ts';

// The cache against the simulator's DNS server, whose records change while the resolver runs (a
// provider moving its MX, a host renumbered, a domain going null MX): each answer is followed
// after its own TTL and not before, within the configured bounds; a failing DNS is bridged by
// the last good answer for a bounded time.

const second = 1_000;
let dns: DnsServer;
let clock: ReturnType<typeof manualClock>;

beforeEach(async () => {
  dns = await startDnsServer({ records: {} });
  clock = manualClock();
});
afterEach(() => dns.close());

function resolverWith(records: Record<string, DnsRecords>, options: Partial<MxResolverOptions> = {}): MxResolver {
  dns.setRecords(records);
  return createMxResolver({
    dns: createDnsClient([dns.address]),
    routes: compileRoutes([]),
    clock,
    maxCacheSeconds: 3_600,
    minCacheSeconds: 60,
    mxRecordCacheSeconds: 300,
    negativeCacheSeconds: 600,
    staleMaxSeconds: 1_800,
    ...options,
  });
}

async function hostsOf(resolver: MxResolver, domain: string): Promise<string[] | string> {
  const resolution = await resolver.resolveDomain(domain);
  return resolution.kind === 'hosts' ? resolution.hosts.map((host) => host.name) : `${resolution.reply.local}`;
}

async function addressesOf(resolver: MxResolver, host: string): Promise<string[] | string> {
  const resolution = await resolver.resolveAddresses(host);
  return resolution.kind === 'addresses' ? resolution.addresses : `${resolution.reply.local}`;
}

describe('MX resolver cache and record TTLs', () => {
  it("follows a renumbered MX host after its A record's TTL, not before", async () => {
    const resolver = resolverWith({ 'mx.moving.test': { a: ['192.0.2.1'], ttlSeconds: 900 } });
    expect(await addressesOf(resolver, 'mx.moving.test')).toEqual(['192.0.2.1']);
    dns.setRecords({ 'mx.moving.test': { a: ['192.0.2.2'], ttlSeconds: 900 } });
    clock.advance(899 * second);
    expect(await addressesOf(resolver, 'mx.moving.test')).toEqual(['192.0.2.1']);
    clock.advance(2 * second);
    expect(await addressesOf(resolver, 'mx.moving.test')).toEqual(['192.0.2.2']);
  });

  it('keeps A/AAAA answers at least the minimum and at most the maximum, whatever their TTL', async () => {
    const resolver = resolverWith(
      {
        'mx.short.test': { a: ['192.0.2.1'], ttlSeconds: 0 },
        'mx.long.test': { aaaa: ['2001:db8::1'], ttlSeconds: 604_800 },
      },
      { minCacheSeconds: 120, maxCacheSeconds: 1_200 },
    );
    expect(await addressesOf(resolver, 'mx.short.test')).toEqual(['192.0.2.1']);
    expect(await addressesOf(resolver, 'mx.long.test')).toEqual(['2001:db8::1']);
    const queries = dns.stats().queries;
    await addressesOf(resolver, 'mx.short.test');
    expect(dns.stats().queries).toBe(queries);
    dns.setRecords({
      'mx.short.test': { a: ['192.0.2.9'], ttlSeconds: 0 },
      'mx.long.test': { aaaa: ['2001:db8::9'], ttlSeconds: 604_800 },
    });
    clock.advance(119 * second);
    expect(await addressesOf(resolver, 'mx.short.test')).toEqual(['192.0.2.1']);
    clock.advance(2 * second);
    expect(await addressesOf(resolver, 'mx.short.test')).toEqual(['192.0.2.9']);
    clock.advance(1_078 * second);
    expect(await addressesOf(resolver, 'mx.long.test')).toEqual(['2001:db8::1']);
    clock.advance(2 * second);
    expect(await addressesOf(resolver, 'mx.long.test')).toEqual(['2001:db8::9']);
  });

  it('follows a provider moving its MX, and a domain going null MX (RFC 7505), after mxRecordCacheSeconds', async () => {
    const resolver = resolverWith({
      'moving.test': { mx: [{ exchange: 'mx.old-provider.test', priority: 10 }] },
      'closing.test': { mx: [{ exchange: 'mx.closing.test', priority: 10 }] },
    });
    expect(await hostsOf(resolver, 'moving.test')).toEqual(['mx.old-provider.test']);
    expect(await hostsOf(resolver, 'closing.test')).toEqual(['mx.closing.test']);
    dns.setRecords({
      'moving.test': { mx: [{ exchange: 'mx.new-provider.test', priority: 10 }] },
      'closing.test': { mx: [{ exchange: '.', priority: 0 }] },
    });
    clock.advance(299 * second);
    expect(await hostsOf(resolver, 'moving.test')).toEqual(['mx.old-provider.test']);
    expect(await hostsOf(resolver, 'closing.test')).toEqual(['mx.closing.test']);
    clock.advance(2 * second);
    expect(await hostsOf(resolver, 'moving.test')).toEqual(['mx.new-provider.test']);
    expect(await hostsOf(resolver, 'closing.test')).toBe('null_mx');
  });

  it('keeps MX answers within the bounds too', async () => {
    const resolver = resolverWith(
      { 'bounded.test': { mx: [{ exchange: 'mx1.bounded.test', priority: 10 }] } },
      { mxRecordCacheSeconds: 300, maxCacheSeconds: 100 },
    );
    expect(await hostsOf(resolver, 'bounded.test')).toEqual(['mx1.bounded.test']);
    dns.setRecords({ 'bounded.test': { mx: [{ exchange: 'mx2.bounded.test', priority: 10 }] } });
    clock.advance(99 * second);
    expect(await hostsOf(resolver, 'bounded.test')).toEqual(['mx1.bounded.test']);
    clock.advance(2 * second);
    expect(await hostsOf(resolver, 'bounded.test')).toEqual(['mx2.bounded.test']);
  });

  it('keeps NXDOMAIN and NODATA answers for the negative time (RFC 2308), then sees the domain appear', async () => {
    const resolver = resolverWith({ 'implicit.test': { a: ['192.0.2.5'], ttlSeconds: 3_600 } });
    expect(await hostsOf(resolver, 'new.test')).toBe('domain_not_found');
    // No MX: the domain is its own MX (RFC 5321 §5.1) only as long as a NODATA answer is kept.
    expect(await hostsOf(resolver, 'implicit.test')).toEqual(['implicit.test']);
    dns.setRecords({
      'new.test': { mx: [{ exchange: 'mx.new.test', priority: 10 }] },
      'implicit.test': { a: ['192.0.2.5'], mx: [{ exchange: 'mx.implicit.test', priority: 10 }], ttlSeconds: 3_600 },
    });
    clock.advance(599 * second);
    expect(await hostsOf(resolver, 'new.test')).toBe('domain_not_found');
    expect(await hostsOf(resolver, 'implicit.test')).toEqual(['implicit.test']);
    clock.advance(2 * second);
    expect(await hostsOf(resolver, 'new.test')).toEqual(['mx.new.test']);
    expect(await hostsOf(resolver, 'implicit.test')).toEqual(['mx.implicit.test']);
  });
});

describe('MX resolver cache and a failing DNS (stale-if-error)', () => {
  it('uses the last good answer while DNS answers SERVFAIL, says so, and stops after mxStaleMaxSeconds', async () => {
    const events: StaleEvent[] = [];
    const resolver = resolverWith(
      {
        'broken.test': { mx: [{ exchange: 'mx.broken.test', priority: 10 }] },
        'mx.broken.test': { a: ['192.0.2.7'], ttlSeconds: 300 },
      },
      { onStale: (event) => events.push(event) },
    );
    const start = clock.now();
    expect(await hostsOf(resolver, 'broken.test')).toEqual(['mx.broken.test']);
    expect(await addressesOf(resolver, 'mx.broken.test')).toEqual(['192.0.2.7']);
    dns.setRecords({ 'broken.test': { servfail: true }, 'mx.broken.test': { servfail: true } });

    clock.advance(301 * second);
    expect(await hostsOf(resolver, 'broken.test')).toEqual(['mx.broken.test']);
    expect(await addressesOf(resolver, 'mx.broken.test')).toEqual(['192.0.2.7']);
    expect(resolver.staleAnswers()).toEqual([
      {
        name: 'broken.test',
        reason: 'MX lookup for broken.test failed: ESERVFAIL',
        since: clock.now(),
        until: start + (300 + 1_800) * second,
      },
      {
        name: 'mx.broken.test',
        reason: 'address lookup for mx.broken.test failed: ESERVFAIL',
        since: clock.now(),
        until: start + (300 + 1_800) * second,
      },
    ]);
    expect(events.map((event) => [event.state, event.name])).toEqual([
      ['serving', 'broken.test'],
      ['serving', 'mx.broken.test'],
    ]);

    // Still within the bound: answered at once, DNS asked again in the background.
    clock.advance(1_000 * second);
    expect(await hostsOf(resolver, 'broken.test')).toEqual(['mx.broken.test']);

    clock.advance(800 * second);
    // The deferred messages' reply says why they went out until now (herald doctor quotes it).
    const lapsed = `MX lookup for broken.test failed: ESERVFAIL; the last good answer, used since ${new Date(start + 301 * second).toISOString()} while DNS failed, is past mta.mxStaleMaxSeconds`;
    expect(await resolver.resolveDomain('broken.test')).toMatchObject({
      kind: 'failure',
      reply: { local: 'dns_temporary', text: lapsed },
    });
    clock.advance(11 * second);
    expect(await resolver.resolveDomain('broken.test')).toMatchObject({ reply: { text: lapsed } });
    expect(await addressesOf(resolver, 'mx.broken.test')).toBe('dns_temporary');
    expect(resolver.staleAnswers()).toEqual([]);
    expect(events.map((event) => [event.state, event.name]).slice(2)).toEqual([
      ['expired', 'broken.test'],
      ['expired', 'mx.broken.test'],
    ]);
  });

  it('takes the new answer as soon as DNS answers again', async () => {
    let recovered!: () => void;
    const recovery = new Promise<void>((resolve) => {
      recovered = resolve;
    });
    const resolver = resolverWith(
      { 'flaky.test': { mx: [{ exchange: 'mx1.flaky.test', priority: 10 }] } },
      { onStale: (event) => event.state === 'recovered' && recovered() },
    );
    expect(await hostsOf(resolver, 'flaky.test')).toEqual(['mx1.flaky.test']);
    dns.setRecords({ 'flaky.test': { servfail: true } });
    clock.advance(301 * second);
    expect(await hostsOf(resolver, 'flaky.test')).toEqual(['mx1.flaky.test']);
    dns.setRecords({ 'flaky.test': { mx: [{ exchange: 'mx2.flaky.test', priority: 10 }] } });
    clock.advance(11 * second);
    // Answered from the stale entry while the lookup that finds the new MX runs.
    expect(await hostsOf(resolver, 'flaky.test')).toEqual(['mx1.flaky.test']);
    await recovery;
    expect(await hostsOf(resolver, 'flaky.test')).toEqual(['mx2.flaky.test']);
    expect(resolver.staleAnswers()).toEqual([]);
  });

  it('uses the last good answer while DNS times out, without waiting for the timeout once it is known', async () => {
    const resolver = resolverWith(
      {
        'down.test': { mx: [{ exchange: 'mx.down.test', priority: 10 }] },
        'mx.down.test': { a: ['192.0.2.8'] },
      },
      // Short DNS timeouts keep the test quick; their length is not what is checked.
      { dns: createDnsClient([dns.address], 50) },
    );
    expect(await hostsOf(resolver, 'down.test')).toEqual(['mx.down.test']);
    expect(await addressesOf(resolver, 'mx.down.test')).toEqual(['192.0.2.8']);
    dns.setRecords({ 'down.test': { silent: true }, 'mx.down.test': { silent: true } });
    clock.advance(301 * second);
    expect(await hostsOf(resolver, 'down.test')).toEqual(['mx.down.test']);
    expect(await addressesOf(resolver, 'mx.down.test')).toEqual(['192.0.2.8']);
    expect(resolver.staleAnswers().map((stale) => stale.reason)).toEqual([
      'MX lookup for down.test failed: ETIMEOUT',
      'address lookup for mx.down.test failed: ETIMEOUT',
    ]);
    // Past the retry time: the answer comes from the cache while the new lookup is still unanswered.
    clock.advance(11 * second);
    const unanswered = dns.stats().unanswered;
    expect(await hostsOf(resolver, 'down.test')).toEqual(['mx.down.test']);
    expect(dns.stats().unanswered).toBe(unanswered);
  });

  it('never serves a negative answer stale, nor anything with mxStaleMaxSeconds 0', async () => {
    const records = { 'nostale.test': { mx: [{ exchange: 'mx.nostale.test', priority: 10 }] } };
    const withStale = resolverWith(records);
    const withoutStale = resolverWith(records, { staleMaxSeconds: 0 });
    expect(await hostsOf(withStale, 'gone.test')).toBe('domain_not_found');
    expect(await hostsOf(withoutStale, 'nostale.test')).toEqual(['mx.nostale.test']);
    dns.setRecords({ 'nostale.test': { servfail: true }, 'gone.test': { servfail: true } });
    clock.advance(601 * second);
    expect(await hostsOf(withStale, 'gone.test')).toBe('dns_temporary');
    expect(await hostsOf(withoutStale, 'nostale.test')).toBe('dns_temporary');
  });
});
