import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer } from '../src/api/server.ts';
import { createLogger } from '../src/common/logger.ts';
import { startMetricsServer } from '../src/metrics/server.ts';
import type { Herald } from '../src/main.ts';
import { startExecutionServer } from '../src/midsourcing/execution-server.ts';
import { signRequest } from '../src/midsourcing/signing.ts';
import { midPathPrefix } from '../src/midsourcing/wire.ts';
import type { Store } from '../src/store/database.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { heraldOver } from '../src/tracking/testing/seed-tracking.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';
import { getHead, keptAliveFrom, openFrom, statusFrom } from './support/http-sockets.ts';
import { waitFor } from './support/wait.ts';

// The HTTP servers open to strangers, attacked from outside with real sockets: one address
// (127.0.0.2) holding idle connections, dripping a request head, or keeping connections alive
// doing nothing, while another address (127.0.0.3) must still be served.

const attacker = '127.0.0.2';
const client = '127.0.0.3';
/** The HTTPS proxy in front: it carries every client's connections. */
const proxy = '127.0.0.7';
/** A tracking key's secret: the configuration section holding the limits must never be logged. */
const secret = 'never-logged-secret-0123456789';
const limits = { maxConnections: 6, maxConnectionsPerClient: 3, headersTimeoutMs: 1_000, keepAliveTimeoutMs: 1_000 };

let store: Store;
let database: TestDatabase;
const opened: Socket[] = [];

beforeAll(async () => {
  ({ store, database } = await openMigratedDatabase('sqlite'));
});
/** The server under test in the running describe block: each test starts with it holding no connection. */
let current: Server | undefined;
afterEach(async () => {
  for (const socket of opened.splice(0)) socket.destroy();
  const server = current;
  if (server)
    await waitFor(
      () => new Promise<boolean>((resolve) => server.getConnections((_error, count) => resolve(count === 0))),
      'the server to see every connection of the test closed',
    );
});
afterAll(async () => {
  await store.close();
  await database.drop();
});

/** The value of one series of a counter in a Prometheus text exposition (0 when absent). */
function counterValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** A Herald over the test's database whose log lines are kept. */
function loggedHerald(config: Record<string, unknown>): { herald: Herald; logs: string[] } {
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  return { herald: { ...heraldOver(store, config), logger: createLogger({ destination }) }, logs };
}

interface Started {
  server: Server;
  port: number;
  /** The text of its process's /metrics. */
  metrics(): Promise<string>;
  /** The lines its logger wrote. */
  logs: string[];
  close(): Promise<void>;
}

/** A server listening at `url`, of a Herald whose log lines are `logs`, as Started. */
function startedAt(
  { herald, logs }: { herald: Herald; logs: string[] },
  listening: { server: Server; url: string; close(): Promise<void> },
): Started {
  return {
    server: listening.server,
    port: Number(new URL(listening.url).port),
    metrics: () => herald.metrics.registry.metrics(),
    logs,
    close: () => listening.close(),
  };
}

/**
 * The attacks, on a server started by `start` with `limits` and `proxy` as its proxy (`proxied: false`:
 * a server with no proxies); `request` gives the head of a request (getHead) it answers with `answer`
 * and keeps the connection open after.
 */
function describeCaps(
  name: string,
  start: () => Promise<Started>,
  request: () => string,
  answer: RegExp,
  { proxied = true } = {},
): void {
  describe(`${name} server`, () => {
    let started: Started;
    let port: number;
    const refused = async (reason: string) =>
      counterValue(
        await started.metrics(),
        `herald_http_connections_refused_total{server="${name}",reason="${reason}"}`,
      );

    beforeAll(async () => {
      started = await start();
      port = started.port;
      current = started.server;
    });
    afterAll(async () => {
      current = undefined;
      await started.close();
    });
    it('closes a connection over maxConnectionsPerClient at once, and serves another address meanwhile', async () => {
      const held = await Promise.all([1, 2, 3].map(() => openFrom(attacker, port, opened)));
      const over = await openFrom(attacker, port, opened);
      // Closed before a byte is read: no HTTP answer at all.
      expect(await over.closed).toBe('');
      expect(await statusFrom(client, port, request(), opened)).toMatch(answer);
      for (const { socket } of held) expect(socket.destroyed).toBe(false);
      expect(await refused('client_full')).toBeGreaterThanOrEqual(1);
      const warnings = started.logs.filter((line) => line.includes('connections refused'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain(`"lastClient":"${attacker}"`);
      expect(started.logs.join('\n')).not.toContain(secret);
    });

    it('closes a connection over maxConnections at once, whatever its address', async () => {
      await Promise.all(
        ['127.0.0.4', '127.0.0.4', '127.0.0.5', '127.0.0.5', '127.0.0.6', '127.0.0.6'].map((from) =>
          openFrom(from, port, opened),
        ),
      );
      const over = await openFrom(client, port, opened);
      expect(await over.closed).toBe('');
      expect(await refused('server_full')).toBeGreaterThanOrEqual(1);
    });

    it.runIf(proxied)("counts a configured proxy's connections by maxConnections only", async () => {
      const through = await Promise.all([1, 2, 3, 4, 5].map(() => keptAliveFrom(proxy, port, request(), opened)));
      for (const { answered } of through) expect(await answered).toMatch(answer);
    });

    it('answers 408 and closes a request head dripped past headersTimeoutMs (slowloris)', async () => {
      const slow = await openFrom(attacker, port, opened);
      slow.socket.write('GET /healthz HTTP/1.1\r\nX-Slow: a');
      expect(await slow.closed).toMatch(/^HTTP\/1\.1 408 /);
    });

    it('closes a kept-alive connection idle past keepAliveTimeoutMs, freeing its slot', async () => {
      const idle = await Promise.all([1, 2, 3].map(() => keptAliveFrom(attacker, port, request(), opened)));
      for (const { answered } of idle) expect(await answered).toMatch(answer);
      await Promise.all(idle.map(({ closed }) => closed));
      expect(await statusFrom(attacker, port, request(), opened)).toMatch(answer);
    });
  });
}

describeCaps(
  'tracking',
  async () => {
    const keys = [{ id: 'k1', secret, createdAt: '2026-01-01' }];
    const { herald, logs } = loggedHerald({
      tracking: { host: '127.0.0.1', port: 0, ...limits, proxies: [proxy], keys },
    });
    const service = await createTrackingService(herald);
    const port = Number(new URL(await service.listen()).port);
    return {
      server: service.app.server,
      port,
      metrics: () => herald.metrics.registry.metrics(),
      logs,
      close: () => service.close(),
    };
  },
  () => getHead('/healthz'),
  /^HTTP\/1\.1 200 /,
);

describeCaps(
  'api',
  async () => {
    const logged = loggedHerald({ api: { host: '127.0.0.1', ...limits, trustedProxies: [proxy] } });
    return startedAt(logged, await startApiServer(logged.herald, 0));
  },
  () => getHead('/healthz'),
  /^HTTP\/1\.1 200 /,
);

const peer = { name: 'marketing-1', secret: 'a-shared-secret-of-the-pair-0123' };
describeCaps(
  'mid',
  async () => {
    const { herald, logs } = loggedHerald({
      midsourcing: {
        mode: 'execution',
        listen: { host: '127.0.0.1', port: 0, ...limits, proxies: [proxy] },
        peers: [peer],
      },
    });
    const server = await startExecutionServer({
      store,
      config: herald.config.midsourcing,
      logger: herald.logger,
      onConnectionRefused: (reason) => herald.metrics.countRefusedConnection('mid', reason),
    });
    return {
      server: server.server,
      port: server.port,
      metrics: () => herald.metrics.registry.metrics(),
      logs,
      close: () => server.close(),
    };
  },
  // A signed request (an unsigned one is answered and its connection closed): counters of a delivery it does not know.
  () => {
    const path = `${midPathPrefix}/deliveries/1/counters`;
    const signed = signRequest({
      peer: peer.name,
      secret: peer.secret,
      method: 'GET',
      path,
      body: '',
      now: Date.now(),
      nonce: randomUUID(),
    });
    return getHead(path, Object.fromEntries(Object.entries(signed)));
  },
  /^HTTP\/1\.1 404 /,
);

describeCaps(
  'metrics',
  async () => {
    const logged = loggedHerald({ metrics: { host: '127.0.0.1', ...limits } });
    return startedAt(logged, await startMetricsServer(logged.herald, 0));
  },
  () => getHead('/healthz'),
  /^HTTP\/1\.1 200 /,
  // Prometheus scrapes the port itself: no proxy is configured there.
  { proxied: false },
);
