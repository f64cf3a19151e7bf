import { describe, expect, it } from 'vitest';
import { parseConfig } from './load.ts';
import { checkConfigSafety, isLocalHost, isReservedDomain } from './safety.ts';

const safe = {
  tracking: { baseUrl: 'https://t.news.example.net' },
  mta: {
    heloName: 'mta1.news.example.net',
    bounceDomain: 'bounces.news.example.net',
    dkim: [{ domain: 'news.example.net', selector: 's1', privateKeyFile: '/keys/s1.pem' }],
  },
};

const ids = (raw: Record<string, unknown>, facts = {}) =>
  checkConfigSafety(parseConfig(raw, 'test'), facts).map((w) => `${w.id} ${w.key}`);

describe('checkConfigSafety', () => {
  it('names every unsafe default', () => {
    expect(ids({})).toEqual([
      'tracking-base-url-loopback tracking.baseUrl',
      'bounce-domain-reserved mta.bounceDomain',
      'helo-name-not-public mta.heloName',
      'dkim-missing mta.dkim',
    ]);
  });

  it('finds nothing in a production-like configuration', () => {
    expect(ids(safe, { fromDomains: ['news.example.net'], bounceDomainResolves: true })).toEqual([]);
  });

  it.each([
    [{ tracking: { baseUrl: 'http://t.news.example.net' } }, {}, 'tracking-base-url-http tracking.baseUrl'],
    [{ tracking: { baseUrl: 'https://10.0.0.4' } }, {}, 'tracking-base-url-loopback tracking.baseUrl'],
    [{}, { bounceDomainResolves: false }, 'bounce-domain-unresolvable mta.bounceDomain'],
    [{ mta: { heloName: 'mailer' } }, {}, 'helo-name-not-public mta.heloName'],
    [{ mta: { heloName: '192.0.2.10' } }, {}, 'helo-name-not-public mta.heloName'],
    [{}, { fromDomains: ['other.example.org'] }, 'dkim-missing mta.dkim'],
    [
      { mta: { routes: [{ match: '*', host: '127.0.0.1', port: 2526 }] } },
      {},
      'resolver-reaches-internet mta.resolverServers',
    ],
    [
      { mta: { routes: [{ match: '*', host: '127.0.0.1' }], resolverServers: ['8.8.8.8'] } },
      {},
      'resolver-reaches-internet mta.resolverServers',
    ],
    [
      {
        midsourcing: {
          mode: 'marketing',
          peers: [
            { name: 'exec-1', url: 'https://exec-1.example.net', secret: 'a-shared-secret-0123' },
            {
              name: 'exec-2',
              url: 'https://exec-2.example.net',
              secret: 'a-shared-secret-0123',
              acceptUnsignedAnswers: true,
            },
          ],
        },
      },
      {},
      'mid-unsigned-answers midsourcing.peers[1].acceptUnsignedAnswers',
    ],
    [{ tracking: { tokenTtlDays: 7 } }, {}, 'unsubscribe-under-30-days tracking.tokenTtlDays'],
    [{ tracking: { keyGraceDays: 0 } }, {}, 'unsubscribe-under-30-days tracking.keyGraceDays'],
    [
      { workflows: { cleanup: { deliveryLogsDays: 14 } } },
      {},
      'unsubscribe-under-30-days workflows.cleanup.deliveryLogsDays',
    ],
  ])('flags %j with %j', (override, facts, expected) => {
    const merged = {
      ...safe,
      ...override,
      tracking: { ...safe.tracking, ...(override as { tracking?: object }).tracking },
      mta: { ...safe.mta, ...(override as { mta?: object }).mta },
    };
    expect(ids(merged, { fromDomains: ['news.example.net'], bounceDomainResolves: true, ...facts })).toEqual([
      expected,
    ]);
  });

  it('quotes a peer URL without its password or token', () => {
    const raw = {
      ...safe,
      midsourcing: {
        mode: 'marketing',
        peers: [
          {
            name: 'exec-2',
            url: 'https://ops:hunter2@exec-2.example.net/?token=abc123',
            secret: 'a-shared-secret-0123',
            acceptUnsignedAnswers: true,
          },
        ],
      },
    };
    const [warning] = checkConfigSafety(parseConfig(raw, 'test'), { fromDomains: [], bounceDomainResolves: true });
    expect(warning!.message).toContain('https://ops:***@exec-2.example.net/?token=***');
    expect(warning!.message).not.toMatch(/hunter2|abc123/);
  });

  it('a simulator resolver with simulator routes is safe', () => {
    const raw = {
      ...safe,
      mta: { ...safe.mta, routes: [{ match: '*', host: '127.0.0.1' }], resolverServers: ['127.0.0.1:5353'] },
    };
    expect(ids(raw, { fromDomains: [], bounceDomainResolves: true })).toEqual([]);
  });

  it('classifies names and hosts', () => {
    expect(['bounces.herald.invalid', 'x.test', 'localhost', 'example.com'].map(isReservedDomain)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(isReservedDomain('bounces.herald.io')).toBe(false);
    expect(['127.0.0.1', '::1', '192.168.1.2', '172.20.0.1', 'localhost'].every(isLocalHost)).toBe(true);
    expect(['203.0.113.5', 't.example.net', '172.32.0.1'].some(isLocalHost)).toBe(false);
  });
});
