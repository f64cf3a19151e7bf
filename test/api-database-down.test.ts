import type { LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { buildApiApp, type ApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { capturedLogger } from './support/captured-log.ts';
import { startCuttableProxy, type CuttableProxy } from './support/cuttable-proxy.ts';
import { createTestDatabase, postgresUnavailable, type TestDatabase } from './support/databases.ts';

// What a client (and the operator woken at 3 a.m.) gets from the API while PostgreSQL is down,
// stuck or silent: a 503 naming the database code with Retry-After, not "500 internal error: a bug"
// nor a request that never ends, and nothing of the database's address or SQL in the body (the log
// has them).

interface Setup {
  herald: Herald;
  app: ApiApp['app'];
  database: TestDatabase;
  proxy: CuttableProxy;
  log: ReturnType<typeof capturedLogger>;
  ask(method: 'GET' | 'POST', url: string): Promise<LightMyRequestResponse>;
}

/** An API on a fresh PostgreSQL database reached through a cuttable proxy, an operator token, `body`, then all closed. */
async function withApi(
  options: { database?: Record<string, number>; databaseDeadlineMs?: number },
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  const database = await createTestDatabase('postgres');
  const target = new URL(database.url);
  const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const proxied = new URL(database.url);
  proxied.host = `${proxy.host}:${proxy.port}`;
  const log = capturedLogger();
  const herald = await openHerald({
    config: parseConfig({ database: { url: proxied.toString(), ...options.database } }, 'test'),
    logger: log.logger,
  });
  const token = (await createToken(herald.store, { role: 'operator' }, Date.now())).token;
  const { app } = buildApiApp({
    herald,
    ...(options.databaseDeadlineMs !== undefined && { databaseDeadlineMs: options.databaseDeadlineMs }),
  });
  const ask = (method: 'GET' | 'POST', url: string) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
  try {
    await body({ herald, app, database, proxy, log, ask });
  } finally {
    proxy.resume();
    await app.close();
    await herald.close();
    await proxy.close();
    await database.drop();
  }
}

describe.skipIf(postgresUnavailable !== undefined)('API when PostgreSQL is unavailable', () => {
  it('answers 503 with the DATABASE_* code and Retry-After while the database refuses connections', async () => {
    await withApi({ database: { connectTimeoutMs: 1_000 } }, async ({ proxy, log, ask }) => {
      expect((await ask('GET', '/api/v1/deliveries')).statusCode).toBe(200);
      proxy.refuse();
      for (const [method, url] of [
        ['GET', '/api/v1/deliveries'],
        ['GET', '/api/v1/deliveries/1'],
        ['POST', '/api/v1/deliveries/1/pause'],
      ] as const) {
        const answer = await ask(method, url);
        expect(answer.statusCode, url).toBe(503);
        expect(answer.headers['content-type']).toContain('application/problem+json');
        expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
        const body = answer.json() as { code: string; detail: string };
        expect(body.code).toBe('DATABASE_UNREACHABLE');
        expect(body.detail).toContain('database');
        expect(body.detail).not.toContain(String(proxy.port));
      }
      // The operator's log has what happened.
      expect(log.lines.some((line) => line.includes('ECONNRESET') || line.includes('ECONNREFUSED'))).toBe(true);
    });
  }, 60_000);

  it('answers 503 DATABASE_LOCK_TIMEOUT without the SQL of the query when a lock is held past database.lockTimeoutMs', async () => {
    await withApi({ database: { lockTimeoutMs: 200 } }, async ({ database, ask }) => {
      // An operator's LOCK TABLE in psql, left open.
      const operator = new pg.Client({ connectionString: database.url });
      await operator.connect();
      try {
        await operator.query('begin');
        await operator.query('lock table deliveries in access exclusive mode');
        const answer = await ask('GET', '/api/v1/deliveries');
        expect(answer.statusCode).toBe(503);
        const body = answer.json() as { code: string; detail: string };
        expect(body.code).toBe('DATABASE_LOCK_TIMEOUT');
        expect(body.detail.toLowerCase()).not.toContain('select');
        expect(body.detail).not.toContain('deliveries');
        expect(body.detail).not.toContain('postgres://');
      } finally {
        await operator.query('rollback').catch(() => {});
        await operator.end();
      }
    });
  }, 60_000);

  it('answers 503 instead of hanging when PostgreSQL goes silent (a partition: no reset, only silence)', async () => {
    // A new connection would wait past the test's end: only the deadline can answer.
    const silentFor = { connectTimeoutMs: 600_000 };
    await withApi({ database: silentFor, databaseDeadlineMs: 500 }, async ({ proxy, ask }) => {
      // The pool now holds a connection, which the partition leaves open and silent.
      expect((await ask('GET', '/api/v1/deliveries')).statusCode).toBe(200);
      proxy.blackhole();
      const answer = await ask('GET', '/api/v1/deliveries');
      expect(answer.statusCode).toBe(503);
      expect(answer.headers['retry-after']).toBeDefined();
      expect((answer.json() as { code: string }).code).toBe('DATABASE_UNREACHABLE');
      // A state-changing call too, whose audit row cannot be written either.
      expect((await ask('POST', '/api/v1/deliveries/1/pause')).statusCode).toBe(503);
    });
  }, 60_000);
});
