import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { readiness, startMetricsServer, type MetricsServer } from '../src/metrics/server.ts';
import { parseSmtpReply } from '../src/bounce/smtp-reply.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import type { BindingLimit, RuleSnapshot } from '../src/shaping/snapshot.ts';
import { writeShapingSnapshot } from '../src/shaping/stats-store.ts';
import { startCuttableProxy } from './support/cuttable-proxy.ts';
import { createTestDatabase, describeEachDialect, postgresUnavailable } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// /metrics in Prometheus text format on the metrics port: the MTA's outcome counters with bounded
// labels, and the platform gauges read from the database; /healthz and /readyz beside it.

const now = Date.parse('2026-09-01T12:00:00Z');

describeEachDialect('metrics', (context) => {
  let herald: Herald;
  let server: MetricsServer;

  beforeAll(async () => {
    herald = await openHerald({
      // The readiness test sends 50 probes at once from 127.0.0.1: over the default per-client cap (16).
      config: parseConfig({ database: { url: context.url() }, metrics: { maxConnectionsPerClient: 64 } }, 'test'),
      logger: silentLogger,
      clock: manualClock(now),
    });
    server = await startMetricsServer(herald, 0);
  });
  afterAll(async () => {
    await server?.close();
    await herald?.close();
  });

  async function scrape(): Promise<string> {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    return response.text();
  }

  it('counts outcomes by provider class and reason, and reads queue, deliveries, workflows and database', async () => {
    const recipients = [
      ...Array.from({ length: 3 }, (_, i) => ({ email: `u${i}@gmail.com` })),
      ...Array.from({ length: 2 }, (_, i) => ({ email: `v${i}@private.example` })),
    ];
    await seedDelivery(herald.store.db, { now: now - 1_000, recipients });
    herald.metrics.observeOutcomes([
      {
        kind: 'sent',
        logId: 1,
        deliveryId: 1,
        email: 'r1@example.com',
        mxHost: 'gmail-smtp-in.l.google.com',
        at: now,
        reply: parseSmtpReply('250 2.0.0 OK'),
      },
      {
        kind: 'sent',
        logId: 2,
        deliveryId: 1,
        email: 'r2@example.com',
        mxHost: 'alt1.gmail-smtp-in.l.google.com',
        at: now,
        reply: parseSmtpReply('250 2.0.0 OK'),
      },
      {
        kind: 'failed',
        logId: 3,
        deliveryId: 1,
        email: 'r3@example.com',
        mxHost: 'mx.private.example',
        at: now,
        reply: parseSmtpReply('552 5.2.2 <v0@private.example> mailbox full'),
        verdict: {
          type: 'soft',
          reason: 'mailbox_full',
          category: 'mailboxfull',
          ruleId: 'default',
          packVersion: null,
        },
        expired: false,
      },
      { kind: 'released', logId: 4, deliveryId: 1, email: 'r4@example.com', mxHost: null, at: now },
    ]);
    // An MTA sending to three small domains: the perMxHost generic rule, one rate key per MX host.
    const hostRule = (host: string, load: number, binding: BindingLimit) =>
      ({
        rateKey: `generic|id0|${host}`,
        rule: 'generic',
        shared: false,
        publicId: 0,
        load: { messagesPerHour: load },
        masks: ['*'],
        limits: {
          maxConnections: 5,
          maxMessagesPerHour: 3000,
          maxMessagesPerConnection: 50,
          configuredMaxConnections: 5,
          configuredMaxMessagesPerHour: 3000,
        },
        openConnections: 1,
        messages: Math.round(load * 3000),
        waiting: 0,
        binding,
        bindingReason: binding,
        backoffs: [],
      }) satisfies RuleSnapshot;
    await writeShapingSnapshot(herald.store, {
      ...({
        format: 1,
        nodeId: 'mta-1',
        takenAt: now,
        rulesVersion: 'v1',
        backend: 'memory',
        periodMs: 3_600_000,
      } as const),
      paths: [],
      rules: [
        hostRule('mx.a.example', 0.2, 'none'),
        hostRule('mx.b.example', 0.97, 'maxMessagesPerHour'),
        hostRule('mx.c.example', 0.1, 'none'),
      ],
      backoffs: [],
      suspensions: [],
      throttle: { connections: {}, rates: {} },
    });
    const text = await scrape();
    // One series per rule and scope, whatever the number of MX hosts: the busiest host, its binding.
    expect(text).toContain('herald_mx_rule_load{rule="generic",scope="id0"} 0.97');
    expect(text.match(/^herald_mx_rule_binding\{.*$/gm)).toEqual([
      'herald_mx_rule_binding{rule="generic",scope="id0",limit="maxMessagesPerHour"} 1',
    ]);
    expect(text).toContain('herald_messages_total{outcome="sent",reason="none",domain_class="google"} 2');
    expect(text).toContain('herald_messages_total{outcome="failed",reason="mailbox_full",domain_class="other"} 1');
    expect(text).toContain('herald_queue_due{domain_class="google"} 3');
    expect(text).toContain('herald_queue_due{domain_class="other"} 2');
    expect(text).toContain('herald_deliveries{state="in_progress"} 1');
    expect(text).toMatch(/herald_workflow_healthy\{workflow="cleanup"\} [01]/);
    expect(text).toMatch(/herald_database_size_bytes [1-9]\d*/);
    expect(text).toContain('herald_process_resident_memory_bytes');
    // Bounded labels: never an address or a recipient domain.
    expect(text).not.toMatch(/@|private\.example|gmail\.com/);
  });

  it('answers healthz and readyz', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', pendingMigrations: [] });
  });

  it('answers a request carrying a body 413 and closes its connection, instead of reading the body for as long as it drips', async () => {
    const { port } = new URL(server.url);
    for (const head of [
      'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n',
      'POST /anything HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n',
      'GET /metrics HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 100000\r\n\r\n',
    ]) {
      const socket = connect({ host: '127.0.0.1', port: Number(port) });
      let answer = '';
      const answered = new Promise<void>((resolve) =>
        socket.on('data', (chunk) => {
          answer += chunk.toString('latin1');
          if (answer.includes('\r\n\r\n')) resolve();
        }),
      );
      socket.on('error', () => {});
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      try {
        socket.write(`${head}a`);
        await answered;
        // Before: 200 (or 404, 421), and the connection kept for as long as a byte came every few seconds.
        expect(answer, head).toMatch(/^HTTP\/1\.1 413 /);
        await closed;
        expect(answer).toContain('"code":"INPUT_TOO_LARGE"');
      } finally {
        socket.destroy();
      }
    }
    // A scrape without a body is served, its connection kept alive.
    const scrape = await fetch(`${server.url}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get('connection')).not.toBe('close');
    await scrape.text();
  });

  it('holds at most metrics.maxConnections connections: one more is closed at once, and served once a slot is free', async () => {
    const capped = await startMetricsServer(
      { ...herald, config: { ...herald.config, metrics: { ...herald.config.metrics, maxConnections: 2 } } },
      0,
    );
    const port = Number(new URL(capped.url).port);
    const sockets: Socket[] = [];
    /** A connection that has had one answer (so the server holds it) and stays open, keep-alive. */
    const open = () =>
      new Promise<{ socket: Socket; answer: Promise<string> }>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port });
        sockets.push(socket);
        socket.on('error', () => {});
        let text = '';
        const answer = new Promise<string>((done) => {
          socket.on('data', (chunk) => {
            text += chunk.toString('latin1');
            if (text.includes('\r\n\r\n')) done(text);
          });
          socket.once('close', () => done(text));
        });
        socket.once('connect', () => {
          socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
          resolve({ socket, answer });
        });
      });
    try {
      const first = await open();
      const second = await open();
      expect(await first.answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(await second.answer).toMatch(/^HTTP\/1\.1 200 /);
      // Before: served too, and so were the next thousands (1,572 of 2,000 idle connections held, none closed).
      const third = await open();
      expect(await third.answer).toBe('');
      expect(third.socket.destroyed || third.socket.readableEnded).toBe(true);
      const freed = new Promise((resolve) => first.socket.once('close', resolve));
      first.socket.destroy();
      await freed;
      await waitFor(async () => (await (await open()).answer).startsWith('HTTP/1.1 200 '), 'a slot freed');
    } finally {
      for (const socket of sockets) socket.destroy();
      await capped.close();
    }
  });

  it('checks readiness once for the probes of a second, however many come', async () => {
    const first = readiness(herald);
    expect(readiness(herald)).toBe(first);
    const answers = await Promise.all(Array.from({ length: 50 }, () => fetch(`${server.url}/readyz`)));
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    expect(await first).toEqual({ ready: true, pendingMigrations: [] });
  });
});

describe.skipIf(postgresUnavailable !== undefined)('readiness when PostgreSQL goes silent', () => {
  it('answers 503 with the reason at its deadline, and checks again only once the database has answered', async () => {
    // A partition: packets vanish, no reset. Every probe used to wait for as long as the socket lived.
    const database = await createTestDatabase('postgres');
    const target = new URL(database.url);
    const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const proxied = new URL(database.url);
    proxied.host = `${proxy.host}:${proxy.port}`;
    const silent = await openHerald({
      config: parseConfig({ database: { url: proxied.toString() } }, 'test'),
      logger: silentLogger,
    });
    const server = await startMetricsServer(silent, 0);
    const probe = async () => {
      const answer = await fetch(`${server.url}/readyz`);
      return { status: answer.status, body: await answer.json() };
    };
    try {
      expect((await probe()).status).toBe(200);
      proxy.blackhole();
      await waitFor(async () => (await probe()).status === 503, 'a 503 from /readyz', 15_000);
      expect((await probe()).body).toEqual({
        status: 'not_ready',
        pendingMigrations: [],
        reason: 'the database did not answer within 2 s',
      });
      // The unanswered check is not repeated: no probe opens another connection to the database.
      const connections = proxy.accepted();
      for (let i = 0; i < 5; i++) expect((await probe()).status).toBe(503);
      expect(proxy.accepted()).toBe(connections);
      proxy.resume();
      await waitFor(async () => (await probe()).status === 200, 'a 200 once the database answers again', 15_000);
    } finally {
      await server.close();
      await silent.close();
      await proxy.close();
      await database.drop();
    }
  }, 40_000);
});
