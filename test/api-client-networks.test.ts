import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { describeEachDialect } from './support/databases.ts';

// The auth limiter over real HTTP, the clients being IPv6 hosts behind the TLS proxy (a trusted
// 127.0.0.1 that forwards their address): a host of an IPv6 /64 may pick a new address for each
// request, so its failures are counted for the whole /64, on the API and on the dashboard's forms.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

describeEachDialect('API auth limiter and IPv6 clients', (context) => {
  let herald: Herald;
  let viewer: string;
  const apps: ApiApp[] = [];

  const listen = async (api: Record<string, unknown> = {}) => {
    const app = buildApiApp({
      herald: {
        ...herald,
        config: {
          ...herald.config,
          api: { ...herald.config.api, authFailuresPerWindow: 3, trustedProxies: ['127.0.0.1'], ...api },
        },
      },
    });
    apps.push(app);
    return app.app.listen({ host: '127.0.0.1', port: 0 });
  };
  const guess = (url: string, client: string, token = `herald_AAAAAAAAAAAA_${'x'.repeat(43)}`) =>
    fetch(`${url}/api/v1/deliveries`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': client } });

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
    viewer = (await createToken(herald.store, { role: 'viewer' }, clock.now())).token;
  });
  afterAll(async () => {
    for (const app of apps) await app.app.close();
    await herald?.close();
  });

  it('counts the token guesses of every address of an IPv6 /64 together', async () => {
    const url = await listen();
    const statuses: number[] = [];
    // Before: each new address of the /64 had its own three failures (2^64 of them): all 401.
    for (let i = 1; i <= 5; i++) statuses.push((await guess(url, `2001:db8:1:2::${i.toString(16)}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    expect((await guess(url, '2001:db8:1:2:ffff:1:2:3', viewer)).status).toBe(429);
    // Another /64 (another customer of the same provider) is not blocked.
    expect((await guess(url, '2001:db8:1:3::1', viewer)).status).toBe(200);
    clock.advance(60_000);
    expect((await guess(url, '2001:db8:1:2::1', viewer)).status).toBe(200);
  });

  it('counts an IPv4 client the same whether it comes as an IPv4 address or an IPv4-mapped IPv6 one', async () => {
    const url = await listen();
    const statuses = [
      (await guess(url, '192.0.2.7')).status,
      (await guess(url, '::ffff:192.0.2.7')).status,
      (await guess(url, '::ffff:c000:207')).status,
      (await guess(url, '192.0.2.7', viewer)).status,
    ];
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await guess(url, '192.0.2.8', viewer)).status).toBe(200);
    clock.advance(60_000);
  });

  it('counts a client once whatever port a proxy forwards with its address (X-Forwarded-For: 203.0.113.5:4711)', async () => {
    const url = await listen();
    const statuses: number[] = [];
    // Before: a key per source port, so each new connection of the client had three more failures.
    for (const port of [4711, 4712, 4713, 4714]) statuses.push((await guess(url, `203.0.113.5:${port}`)).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
    expect((await guess(url, '[2001:db8:4::1]:1')).status).toBe(401);
    expect((await guess(url, '203.0.113.5', viewer)).status).toBe(429);
    clock.advance(60_000);
  });

  it('counts by api.ipv6ClientPrefixLength when one is configured', async () => {
    const url = await listen({ ipv6ClientPrefixLength: 48 });
    for (let i = 1; i <= 3; i++) expect((await guess(url, `2001:db8:5:${i}::1`)).status).toBe(401);
    expect((await guess(url, '2001:db8:5:ffff::1', viewer)).status).toBe(429);
    expect((await guess(url, '2001:db8:6::1', viewer)).status).toBe(200);
    clock.advance(60_000);
  });

  it('counts the dashboard posts without a session of an IPv6 /64 together', async () => {
    const url = await listen();
    const statuses: number[] = [];
    for (let i = 1; i <= 4; i++)
      statuses.push(
        (
          await fetch(`${url}/ui/deliveries/424242/pause`, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': `2001:db8:9::${i}` },
            body: '',
          })
        ).status,
      );
    expect(statuses).toEqual([401, 401, 401, 429]);
    clock.advance(60_000);
  });
});
