import { describe, expect, it } from 'vitest';
import { manualClock } from '../common/clock.ts';
import { createDnsClient, createMxResolver, type DnsClient } from './mx-resolver.ts';
import { compileRoutes } from './routes.ts';
import { createSocket } from 'node:dgram';
import { buildResponse, mxData, parseQuery, recordTypes, responseCodes } from '../sim/dns-packet.ts';
import { startDnsServer } from '../sim/dns-server.ts';
import { startSimulator } from '../sim/simulator.ts';

/** A resolver asking `dns`, with no static routes, a manual clock and a 60 s cache, plus `options`. */
function resolverAt(dns: { address: string }, options: Partial<Parameters<typeof createMxResolver>[0]> = {}) {
  return createMxResolver({
    dns: createDnsClient([dns.address]),
    routes: compileRoutes([]),
    clock: manualClock(),
    maxCacheSeconds: 60,
    ...options,
  });
}

function dnsError(code: string): Error {
  return Object.assign(new Error(`query ${code}`), { code });
}

/** A scripted DNS client: a seam for the cases the simulator's zone does not have. */
function scriptedDns(
  answers: Record<string, () => Promise<{ exchange: string; priority: number }[]>>,
  calls: string[] = [],
): DnsClient {
  return {
    resolveMx: (name) => {
      calls.push(name);
      return (answers[name] ?? (() => Promise.reject(dnsError('ENOTFOUND'))))();
    },
    resolve4: async (name) =>
      name.startsWith('noaddr') ? Promise.reject(dnsError('ENODATA')) : [{ address: '192.0.2.1', ttl: 60 }],
    resolve6: async () => Promise.reject(dnsError('ENODATA')),
  };
}

describe('MX resolver against the simulator DNS server', () => {
  it('resolves MX by preference, implicit MX, null MX and NXDOMAIN through a real resolver', async () => {
    const simulator = await startSimulator({ trackRecipients: false });
    try {
      const resolver = createMxResolver({
        dns: createDnsClient([simulator.dnsServer]),
        routes: compileRoutes(simulator.routes),
        clock: manualClock(),
        maxCacheSeconds: 60,
        // The simulator's hosts live on loopback.
        allowPrivateAddresses: true,
      });
      const backup = await resolver.resolveDomain('backup.test');
      expect(
        backup.kind === 'hosts' && backup.hosts.map((host) => [host.name, host.preference, host.route?.host]),
      ).toEqual([
        ['mx1.backup.test', 10, '127.0.0.1'],
        ['mx2.backup.test', 20, '127.0.0.1'],
      ]);
      const implicit = await resolver.resolveDomain('nomx.test');
      expect(implicit.kind === 'hosts' && implicit.hosts[0]?.name).toBe('nomx.test');
      expect(await resolver.resolveDomain('nullmx.test')).toMatchObject({
        kind: 'failure',
        reply: { local: 'null_mx', enhanced: '5.1.10' },
      });
      expect(await resolver.resolveDomain('nxdomain.test')).toMatchObject({
        kind: 'failure',
        reply: { local: 'domain_not_found' },
      });
      expect(await resolver.resolveAddresses('mx.accept.test')).toEqual({
        kind: 'addresses',
        addresses: ['127.0.0.1'],
      });
    } finally {
      await simulator.close();
    }
  });
});

describe('MX resolver against a domain listing many MX hosts', () => {
  // Every host is tried for a connect timeout before the attempt fails: 15 silent MX hosts held a
  // message 15 connect timeouts (7.8 s at 500 ms) where the 5 most preferred take 2.6 s.
  it('keeps only the most preferred hosts, maxHosts of them (default 5)', async () => {
    const preferences = [70, 10, 90, 40, 20, 100, 60, 30, 80, 50, 110, 120];
    const dns = await startDnsServer({
      records: {
        'many.test': { mx: preferences.map((priority) => ({ exchange: `mx${priority}.many.test`, priority })) },
      },
    });
    try {
      const names = async (maxHosts?: number) => {
        const resolver = resolverAt(dns, {
          ...(maxHosts !== undefined && { maxHosts }),
        });
        const resolution = await resolver.resolveDomain('many.test');
        return resolution.kind === 'hosts' ? resolution.hosts.map((host) => host.name) : resolution;
      };
      expect(await names()).toEqual(['mx10', 'mx20', 'mx30', 'mx40', 'mx50'].map((name) => `${name}.many.test`));
      expect(await names(2)).toEqual(['mx10.many.test', 'mx20.many.test']);
    } finally {
      await dns.close();
    }
  });
});

describe('MX hosts of equal preference', () => {
  it('are tried in random order, drawn at each resolution, after the more preferred and before the less (RFC 5321 §5.1)', async () => {
    const dns = await startDnsServer({
      records: {
        'equal.test': {
          mx: [
            { exchange: 'mx-backup.equal.test', priority: 20 },
            { exchange: 'mta5.equal.test', priority: 1 },
            { exchange: 'mta6.equal.test', priority: 1 },
            { exchange: 'mta7.equal.test', priority: 1 },
          ],
        },
      },
    });
    try {
      // Draws cycle through the whole range: every one of the three comes first at some resolution.
      const draws = [0, 0.5, 0.99, 0.34, 0.67];
      let next = 0;
      const resolver = resolverAt(dns, {
        random: () => draws[next++ % draws.length]!,
      });
      const firsts = new Set<string>();
      for (let i = 0; i < 10; i++) {
        const resolution = await resolver.resolveDomain('equal.test');
        if (resolution.kind !== 'hosts') throw new Error('no hosts');
        const names = resolution.hosts.map((host) => host.name);
        expect(names.slice(0, 3).sort()).toEqual(['mta5.equal.test', 'mta6.equal.test', 'mta7.equal.test']);
        expect(names[3]).toBe('mx-backup.equal.test');
        firsts.add(names[0]!);
      }
      expect(firsts.size).toBe(3);
    } finally {
      await dns.close();
    }
  });
});

describe('MX resolver and internal addresses', () => {
  // A hostile domain's MX at 127.0.0.1, 0.0.0.0, 10.x or the cloud metadata address had the MTA
  // open SMTP sessions to the host itself and its internal network.
  it('refuses MX hosts at loopback, private, link-local and unspecified addresses unless allowed', async () => {
    const addresses: Record<string, { a?: string[]; aaaa?: string[] }> = {
      'loopback.test': { a: ['127.0.0.1'] },
      'zero.test': { a: ['0.0.0.0'] },
      'lan.test': { a: ['10.1.2.3'] },
      'metadata.test': { a: ['169.254.169.254'] },
      'cgnat.test': { a: ['100.64.0.1'] },
      'v6-loopback.test': { aaaa: ['::1'] },
      'v6-mapped.test': { aaaa: ['::ffff:7f00:1'] },
      'v6-ula.test': { aaaa: ['fd00::1'] },
      'public.test': { a: ['192.0.2.1'] },
      'v6-public.test': { aaaa: ['2001:db8::1'] },
      'mixed.test': { a: ['10.0.0.7', '192.0.2.7'] },
    };
    const dns = await startDnsServer({ records: addresses });
    try {
      const resolverFor = (allowPrivateAddresses?: boolean) =>
        createMxResolver({
          dns: createDnsClient([dns.address]),
          routes: compileRoutes([{ match: 'routed.test', host: '127.0.0.1', port: 2525 }]),
          clock: manualClock(),
          maxCacheSeconds: 60,
          ...(allowPrivateAddresses !== undefined && { allowPrivateAddresses }),
        });
      const strict = resolverFor();
      for (const host of Object.keys(addresses).filter((name) => !name.includes('public') && name !== 'mixed.test'))
        expect(await strict.resolveAddresses(host)).toMatchObject({
          kind: 'failure',
          reply: { local: 'no_address', enhanced: '4.4.4', text: expect.stringContaining('private') },
        });
      expect(await strict.resolveAddresses('public.test')).toEqual({ kind: 'addresses', addresses: ['192.0.2.1'] });
      expect(await strict.resolveAddresses('v6-public.test')).toEqual({
        kind: 'addresses',
        addresses: ['2001:db8::1'],
      });
      // A private address among public ones is dropped, the public ones stay.
      expect(await strict.resolveAddresses('mixed.test')).toEqual({ kind: 'addresses', addresses: ['192.0.2.7'] });
      // The operator's routes are not DNS: they still lead to loopback.
      expect(await strict.resolveDomain('routed.test')).toMatchObject({
        kind: 'hosts',
        hosts: [{ route: { host: '127.0.0.1', port: 2525 } }],
      });
      expect(await resolverFor(true).resolveAddresses('loopback.test')).toEqual({
        kind: 'addresses',
        addresses: ['127.0.0.1'],
      });
    } finally {
      await dns.close();
    }
  });
});

describe('MX resolver and multihomed hosts', () => {
  // RFC 5321 §5.1: a host name may have several addresses; the client tries them in turn. Only the
  // first A record was kept (and AAAA asked only without one), so a host whose first address was
  // down could not be reached at all.
  it('returns every address of a host, IPv4 then IPv6, each in DNS order, at most 16', async () => {
    // 24 A records still fit the simulator's 512-byte UDP answer.
    const many = Array.from({ length: 24 }, (_, i) => `192.0.2.${i + 1}`);
    const dns = await startDnsServer({
      records: {
        'dual.test': { a: ['192.0.2.2', '192.0.2.1'], aaaa: ['2001:db8::2', '2001:db8::1'] },
        'v6only.test': { aaaa: ['2001:db8::5'] },
        'crowded.test': { a: many },
      },
    });
    try {
      const resolver = resolverAt(dns, {});
      expect(await resolver.resolveAddresses('dual.test')).toEqual({
        kind: 'addresses',
        addresses: ['192.0.2.2', '192.0.2.1', '2001:db8::2', '2001:db8::1'],
      });
      expect(await resolver.resolveAddresses('v6only.test')).toEqual({ kind: 'addresses', addresses: ['2001:db8::5'] });
      const crowded = await resolver.resolveAddresses('crowded.test');
      expect(crowded.kind === 'addresses' && crowded.addresses).toEqual(many.slice(0, 16));
    } finally {
      await dns.close();
    }
  });
});

describe('MX resolver and MX hosts written as IP addresses', () => {
  // `literal.test. MX 10 192.0.2.9.`: asked of DNS as a name, NXDOMAIN, and the domain's messages
  // were deferred until they expired.
  it('connects to the address itself, bracketed or not, and still refuses a private one; so for an address literal', async () => {
    const dns = await startDnsServer({
      records: { 'literal.test': { mx: [{ exchange: '192.0.2.9', priority: 10 }] } },
    });
    try {
      const resolver = resolverAt(dns, {});
      const domain = await resolver.resolveDomain('literal.test');
      expect(domain.kind === 'hosts' && domain.hosts.map((host) => host.name)).toEqual(['192.0.2.9']);
      expect(await resolver.resolveAddresses('192.0.2.9')).toEqual({ kind: 'addresses', addresses: ['192.0.2.9'] });
      expect(await resolver.resolveAddresses('[192.0.2.9]')).toEqual({ kind: 'addresses', addresses: ['192.0.2.9'] });
      expect(await resolver.resolveAddresses('[IPv6:2001:db8::9]')).toEqual({
        kind: 'addresses',
        addresses: ['2001:db8::9'],
      });
      // A recipient's address literal (pat@[192.0.2.9]) is its own host, with no MX lookup.
      for (const [domain, host] of [
        ['[192.0.2.9]', '192.0.2.9'],
        ['[IPv6:2001:DB8::9]', '2001:db8::9'],
      ]) {
        const literal = await resolver.resolveDomain(domain!);
        expect(literal.kind === 'hosts' && literal.hosts.map((entry) => [entry.name, entry.preference])).toEqual([
          [host, 0],
        ]);
      }
      expect(await resolver.resolveAddresses('127.0.0.1')).toMatchObject({
        kind: 'failure',
        reply: { local: 'no_address', text: expect.stringContaining('private') },
      });
    } finally {
      await dns.close();
    }
  });

  // `evil.test. MX 10 0:0:0:0:0:ffff:7f00:1.`: an IPv4-mapped address spelled out is 127.0.0.1 to
  // connect() as much as ::ffff:127.0.0.1 is, but only the short spelling was refused.
  it('refuses a loopback or private IPv4 address however its IPv4-mapped IPv6 form is spelled', async () => {
    const dns = await startDnsServer({
      records: { 'evil.test': { mx: [{ exchange: '0:0:0:0:0:ffff:7f00:1', priority: 10 }] } },
    });
    try {
      const resolver = resolverAt(dns, {});
      const domain = await resolver.resolveDomain('evil.test');
      expect(domain.kind === 'hosts' && domain.hosts.map((host) => host.name)).toEqual(['0:0:0:0:0:ffff:7f00:1']);
      for (const host of [
        '0:0:0:0:0:ffff:7f00:1',
        '0:0:0:0:0:FFFF:127.0.0.1',
        '[IPv6:0::ffff:a00:1]',
        '0:0:0:0:0:ffff:a9fe:a9fe',
        '::7f00:1',
      ])
        expect(await resolver.resolveAddresses(host)).toMatchObject({
          kind: 'failure',
          reply: { local: 'no_address', text: expect.stringContaining('private') },
        });
    } finally {
      await dns.close();
    }
  });
});

describe('MX hosts of equal preference beyond maxHosts', () => {
  // Eight hosts at one preference and maxHosts 5: the list was cut in DNS order before the draw, so
  // three of them never received a message from this MTA.
  it('are all drawn from, maxHosts at a time, after the more preferred', async () => {
    const equal = Array.from({ length: 8 }, (_, i) => ({ exchange: `mx${i}.wide.test`, priority: 10 }));
    const dns = await startDnsServer({
      records: { 'wide.test': { mx: [...equal, { exchange: 'first.wide.test', priority: 5 }] } },
    });
    try {
      let seed = 1;
      const resolver = resolverAt(dns, {
        maxHosts: 3,
        // A fixed pseudo-random sequence (Park–Miller): the test does not depend on luck.
        random: () => {
          seed = (seed * 16_807) % 2_147_483_647;
          return seed / 2_147_483_647;
        },
      });
      const seen = new Set<string>();
      for (let i = 0; i < 50; i++) {
        const resolution = await resolver.resolveDomain('wide.test');
        if (resolution.kind !== 'hosts') throw new Error('no hosts');
        expect(resolution.hosts).toHaveLength(3);
        expect(resolution.hosts[0]!.name).toBe('first.wide.test');
        for (const host of resolution.hosts.slice(1)) seen.add(host.name);
      }
      expect([...seen].sort()).toEqual(equal.map((host) => host.exchange).sort());
    } finally {
      await dns.close();
    }
  });
});

describe('MX resolver and a domain listing hundreds of MX hosts and addresses', () => {
  // Answers over 512 bytes come over TCP (the simulator serves both).
  it('keeps the maxHosts most preferred hosts and 16 addresses of a host', async () => {
    const addresses = Array.from({ length: 200 }, (_, i) => `192.0.${2 + Math.floor(i / 100)}.${(i % 100) + 1}`);
    const dns = await startDnsServer({
      records: {
        'hundreds.test': {
          mx: Array.from({ length: 400 }, (_, i) => ({ exchange: `mx${i}.hundreds.test`, priority: 400 - i })),
        },
        'mx399.hundreds.test': { a: addresses },
      },
    });
    try {
      const resolver = resolverAt(dns, {});
      const resolution = await resolver.resolveDomain('hundreds.test');
      expect(resolution.kind === 'hosts' && resolution.hosts.map((host) => host.preference)).toEqual([1, 2, 3, 4, 5]);
      const first = await resolver.resolveAddresses('mx399.hundreds.test');
      expect(first.kind === 'addresses' && first.addresses).toEqual(addresses.slice(0, 16));
    } finally {
      await dns.close();
    }
  });
});

describe('MX resolver and a host listed twice', () => {
  // `10 mx.dup.test` and `20 MX.dup.test.`: the host was tried twice in one attempt (two connect
  // timeouts when it is down) and took a place of maxHosts from another host.
  it('keeps each host once, at its best preference', async () => {
    const dns = await startDnsServer({
      records: {
        'dup.test': {
          mx: [
            { exchange: 'MX.dup.test', priority: 20 },
            { exchange: 'mx.dup.test', priority: 10 },
            { exchange: 'backup.dup.test', priority: 30 },
          ],
        },
      },
    });
    try {
      const resolver = resolverAt(dns, {
        maxHosts: 2,
      });
      const resolution = await resolver.resolveDomain('dup.test');
      expect(resolution.kind === 'hosts' && resolution.hosts.map((host) => [host.name, host.preference])).toEqual([
        ['mx.dup.test', 10],
        ['backup.dup.test', 30],
      ]);
    } finally {
      await dns.close();
    }
  });
});

describe('MX resolver and a name server that never answers AAAA', () => {
  it('caches the A answer for its TTL, so the AAAA timeout is not waited for at every connection', async () => {
    const clock = manualClock();
    const queries: string[] = [];
    const resolver = createMxResolver({
      dns: {
        resolveMx: () => Promise.reject(dnsError('ENODATA')),
        resolve4: async (name) => {
          queries.push(`A ${name}`);
          return [{ address: '192.0.2.1', ttl: 300 }];
        },
        resolve6: async (name) => {
          queries.push(`AAAA ${name}`);
          throw dnsError('ETIMEOUT');
        },
      },
      routes: compileRoutes([]),
      clock,
      maxCacheSeconds: 3_600,
    });
    expect(await resolver.resolveAddresses('mx.broken-v6.test')).toEqual({
      kind: 'addresses',
      addresses: ['192.0.2.1'],
    });
    clock.advance(60_000);
    expect(await resolver.resolveAddresses('mx.broken-v6.test')).toEqual({
      kind: 'addresses',
      addresses: ['192.0.2.1'],
    });
    expect(queries).toEqual(['A mx.broken-v6.test', 'AAAA mx.broken-v6.test']);
    clock.advance(300_000);
    await resolver.resolveAddresses('mx.broken-v6.test');
    expect(queries).toHaveLength(4);
  });
});

describe('MX resolver and a burst of domains', () => {
  // One claimed batch to many domains sent every query at once: the resolver dropped most of them
  // (14,500 of 20,000 timed out against a local server) and their messages were deferred.
  it('keeps at most maxConcurrentLookups queries in flight', async () => {
    // Answers the queries it holds once none came for 20 ms: the largest group answered is the
    // most queries that were in flight at once.
    const server = createSocket('udp4');
    const held: Array<{ question: Parameters<typeof buildResponse>[0] & { name: string }; port: number }> = [];
    let largest = 0;
    let quiet: NodeJS.Timeout | undefined;
    server.on('message', (packet, peer) => {
      const parsed = parseQuery(packet);
      if (parsed.kind !== 'question') return;
      held.push({ question: parsed.question, port: peer.port });
      clearTimeout(quiet);
      quiet = setTimeout(() => {
        largest = Math.max(largest, held.length);
        for (const { question, port } of held.splice(0)) {
          const answer = { type: recordTypes.MX, ttl: 60, data: mxData(10, `mx.${question.name}`) };
          server.send(buildResponse(question, responseCodes.noError, [answer]), port, '127.0.0.1');
        }
      }, 20);
    });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', () => resolve()));
    try {
      const resolver = createMxResolver({
        dns: createDnsClient([`127.0.0.1:${server.address().port}`]),
        routes: compileRoutes([]),
        clock: manualClock(),
        maxCacheSeconds: 60,
        maxConcurrentLookups: 8,
      });
      const resolutions = await Promise.all(
        Array.from({ length: 100 }, (_, i) => resolver.resolveDomain(`d${i}.burst.test`)),
      );
      expect(resolutions.filter((resolution) => resolution.kind === 'hosts')).toHaveLength(100);
      expect(largest).toBeGreaterThan(0);
      expect(largest).toBeLessThanOrEqual(8);
    } finally {
      clearTimeout(quiet);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('MX resolver cache and routes', () => {
  it('caches answers up to the maximum, shares in-flight lookups, and does not cache temporary failures for long', async () => {
    const calls: string[] = [];
    let servfail = true;
    const clock = manualClock();
    const resolver = createMxResolver({
      dns: scriptedDns(
        {
          'a.test': async () => [{ exchange: 'mx.a.test', priority: 10 }],
          'flaky.test': async () => {
            if (servfail) throw dnsError('ESERVFAIL');
            return [{ exchange: 'mx.flaky.test', priority: 10 }];
          },
        },
        calls,
      ),
      routes: compileRoutes([]),
      clock,
      maxCacheSeconds: 60,
    });
    await Promise.all([resolver.resolveDomain('a.test'), resolver.resolveDomain('A.test')]);
    clock.advance(59_000);
    await resolver.resolveDomain('a.test');
    expect(calls).toEqual(['a.test']);
    clock.advance(2_000);
    await resolver.resolveDomain('a.test');
    expect(calls).toEqual(['a.test', 'a.test']);

    expect(await resolver.resolveDomain('flaky.test')).toMatchObject({
      kind: 'failure',
      reply: { local: 'dns_temporary' },
    });
    servfail = false;
    clock.advance(11_000);
    expect(await resolver.resolveDomain('flaky.test')).toMatchObject({ kind: 'hosts' });
  });

  it('skips DNS for a routed domain and fails a domain with neither MX nor address', async () => {
    const calls: string[] = [];
    const resolver = createMxResolver({
      dns: scriptedDns({ 'noaddr.test': () => Promise.reject(dnsError('ENODATA')) }, calls),
      routes: compileRoutes([{ match: 'routed.test', host: '10.0.0.1', port: 2525 }]),
      clock: manualClock(),
      maxCacheSeconds: 60,
    });
    expect(await resolver.resolveDomain('routed.test')).toEqual({
      kind: 'hosts',
      hosts: [{ name: 'routed.test', preference: 0, route: { host: '10.0.0.1', port: 2525 } }],
    });
    expect(calls).toEqual([]);
    expect(await resolver.resolveDomain('noaddr.test')).toMatchObject({
      kind: 'failure',
      reply: { local: 'domain_not_found' },
    });
  });

  it('sweeps out expired answers as new names come, so the cache holds about what an hour sends to', async () => {
    // Kept until the same name came again, every domain ever sent to stayed in memory.
    const clock = manualClock();
    const resolver = createMxResolver({
      dns: scriptedDns({}),
      routes: compileRoutes([]),
      clock,
      maxCacheSeconds: 60,
    });
    const resolveMany = (prefix: string) =>
      Promise.all(Array.from({ length: 3_000 }, (_, i) => resolver.resolveDomain(`${prefix}${i}.test`)));
    await resolveMany('first');
    expect(resolver.cachedNames()).toBe(3_000);
    // NXDOMAIN answers are cached 300 s.
    clock.advance(301_000);
    await resolveMany('second');
    await resolveMany('third');
    expect(resolver.cachedNames()).toBeLessThanOrEqual(6_000);
  });
});
