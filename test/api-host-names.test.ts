import { request } from 'node:http';
import { hostname } from 'node:os';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { startMetricsServer } from '../src/metrics/server.ts';
import { describeEachDialect } from './support/databases.ts';

// DNS rebinding over real HTTP: a page at evil.example:PORT whose name re-resolves to 127.0.0.1
// talks to the API from the operator's browser with `Host: evil.example:PORT`. Such a request is
// refused (421) on every route; the API's addresses, localhost and the configured names are served,
// and X-Forwarded-Host counts from a trusted proxy only.

const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));

/** A request with the headers given verbatim (fetch would not let a test choose its Host). */
function send(
  url: string,
  path: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, headers }, (answer) => {
      let body = '';
      answer.setEncoding('utf8');
      answer.on('data', (chunk) => {
        body += chunk;
      });
      answer.on('end', () => resolve({ status: answer.statusCode ?? 0, body }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

describeEachDialect('API host names', (context) => {
  let herald: Herald;
  const apps: ApiApp[] = [];

  const listen = async (api: { allowedHosts?: string[]; trustedProxies?: string[] }) => {
    const app = buildApiApp({
      herald: { ...herald, config: { ...herald.config, api: { ...herald.config.api, ...api } } },
    });
    apps.push(app);
    return app.app.listen({ host: '127.0.0.1', port: 0 });
  };

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig({ database: { url: context.url() } }, 'test'),
      logger: silentLogger,
      clock,
    });
  });
  afterAll(async () => {
    for (const app of apps) await app.app.close();
    await herald?.close();
  });

  it('refuses a DNS-rebinding page on every route, and serves its own addresses, localhost and the configured names', async () => {
    const url = await listen({ allowedHosts: ['Herald.Internal'] });
    const port = new URL(url).port;
    const evil = { host: `evil.example:${port}`, origin: `http://evil.example:${port}` };
    // Before: 200 with the metrics, the readiness and migrations, the OpenAPI document and the
    // sign-in form (whose double-submit cookie the page could then use to post guesses).
    for (const path of [
      '/metrics',
      '/readyz',
      '/healthz',
      '/api/v1/openapi.json',
      '/ui/sign-in',
      '/api/v1/deliveries',
    ]) {
      const answer = await send(url, path, evil);
      expect(answer.status, path).toBe(421);
      expect(JSON.parse(answer.body)).toMatchObject({ code: 'HOST_NOT_ALLOWED', status: 421 });
      expect(answer.body).toContain('api.allowedHosts');
    }
    expect((await send(url, '/ui/sign-in', evil, 'POST')).status).toBe(421);
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `herald.internal:${port}`,
      `[::1]:${port}`,
      '127.0.0.1',
      `${hostname()}:${port}`,
    ])
      expect((await send(url, '/healthz', { host })).status, host).toBe(200);
  });

  it('believes X-Forwarded-Host from a trusted proxy only', async () => {
    const untrusted = await listen({ allowedHosts: ['herald.example.com'] });
    const port = new URL(untrusted).port;
    // Not from a trusted proxy: the header is ignored, the Host (an address) decides.
    expect(
      (await send(untrusted, '/healthz', { host: `127.0.0.1:${port}`, 'x-forwarded-host': 'evil.example' })).status,
    ).toBe(200);
    const proxied = await listen({ allowedHosts: ['herald.example.com'], trustedProxies: ['127.0.0.1'] });
    const proxiedPort = new URL(proxied).port;
    const through = (name: string) =>
      send(proxied, '/healthz', {
        host: `127.0.0.1:${proxiedPort}`,
        'x-forwarded-host': name,
        'x-forwarded-proto': 'https',
      });
    expect((await through('herald.example.com')).status).toBe(200);
    expect((await through('evil.example')).status).toBe(421);
    // Any name, when the operator says so.
    const anyName = await listen({ allowedHosts: ['*'] });
    expect((await send(anyName, '/healthz', { host: 'evil.example' })).status).toBe(200);
  });

  it('refuses a DNS-rebinding page on the metrics port too, and serves its addresses, localhost and metrics.allowedHosts', async () => {
    const metrics = await startMetricsServer(
      {
        ...herald,
        config: { ...herald.config, metrics: { ...herald.config.metrics, allowedHosts: ['Prometheus.Target'] } },
      },
      0,
    );
    try {
      const port = new URL(metrics.url).port;
      // Before: 200 with every metric, readable by the page from the operator's browser.
      for (const path of ['/metrics', '/readyz', '/healthz']) {
        const answer = await send(metrics.url, path, { host: `evil.example:${port}` });
        expect(answer.status, path).toBe(421);
        expect(JSON.parse(answer.body)).toMatchObject({ code: 'HOST_NOT_ALLOWED', status: 421, instance: path });
        expect(answer.body).toContain('metrics.allowedHosts');
      }
      for (const host of [
        `127.0.0.1:${port}`,
        `localhost:${port}`,
        `prometheus.target:${port}`,
        `${hostname()}:${port}`,
      ])
        expect((await send(metrics.url, '/metrics', { host })).status, host).toBe(200);
    } finally {
      await metrics.close();
    }
  });

  it('refuses a trusted proxy that is not an address, a CIDR range or a named range, naming the key', () => {
    // Before: accepted by the configuration (and `herald config check`); `herald start` then stopped
    // with "invalid IP address: proxy.internal", naming no setting.
    for (const entry of ['proxy.internal', '10.0.0.0/33', 'https://10.0.0.1'])
      expect(() => parseConfig({ api: { trustedProxies: ['127.0.0.1', entry] } }, 'test')).toThrow(
        /api\.trustedProxies\.1: an IP address or a CIDR range/,
      );
    const accepted = ['127.0.0.1', '::1', '10.0.0.0/8', 'fd00::/8', 'loopback', 'uniquelocal'];
    expect(parseConfig({ api: { trustedProxies: accepted } }, 'test').api.trustedProxies).toEqual(accepted);
  });

  it('refuses an allowed host written as a URL or with a port (it would never match)', () => {
    for (const name of ['https://herald.example.com', 'herald.example.com:443', 'herald.example.com/ui'])
      expect(() => parseConfig({ api: { allowedHosts: [name] } }, 'test')).toThrow(
        /api\.allowedHosts\.0: a host name alone/,
      );
    expect(parseConfig({ api: { allowedHosts: ['herald.example.com'] } }, 'test').api.allowedHosts).toEqual([
      'herald.example.com',
    ]);
  });
});
