import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { buildApiApp } from '../src/api/app.ts';
import { createToken } from '../src/api/tokens.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { capturedLogger } from './support/captured-log.ts';
import { startCuttableProxy } from './support/cuttable-proxy.ts';
import { createTestDatabase, postgresUnavailable } from './support/databases.ts';

// What a client (and the operator woken at 3 a.m.) gets from the API while PostgreSQL is down or
// stuck: a 503 naming the database code with Retry-After, not "500 internal error: a bug", and
// nothing of the database's address or SQL in the body (the log has them).

describe.skipIf(postgresUnavailable !== undefined)('API when PostgreSQL is unavailable', () => {
  it('answers 503 with the DATABASE_* code and Retry-After while the database refuses connections', async () => {
    const database = await createTestDatabase('postgres');
    const target = new URL(database.url);
    const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const proxied = new URL(database.url);
    proxied.host = `${proxy.host}:${proxy.port}`;
    const log = capturedLogger();
    const herald = await openHerald({
      config: parseConfig({ database: { url: proxied.toString(), connectTimeoutMs: 1_000 } }, 'test'),
      logger: log.logger,
    });
    const token = (await createToken(herald.store, { role: 'operator' }, Date.now())).token;
    const { app } = buildApiApp({ herald });
    try {
      const ask = (method: 'GET' | 'POST', url: string) =>
        app.inject({ method, url, headers: { authorization: `Bearer ${token}` } });
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
      // The operator's log has what happened, with the address.
      expect(log.lines.some((line) => line.includes('DATABASE_UNREACHABLE') || line.includes('ECONNRESET'))).toBe(true);
    } finally {
      await app.close();
      await herald.close();
      await proxy.close();
      await database.drop();
    }
  }, 60_000);

  it('answers 503 DATABASE_LOCK_TIMEOUT without the SQL of the query when a lock is held past database.lockTimeoutMs', async () => {
    const database = await createTestDatabase('postgres');
    const herald = await openHerald({
      config: parseConfig({ database: { url: database.url, lockTimeoutMs: 200 } }, 'test'),
      logger: capturedLogger().logger,
    });
    const token = (await createToken(herald.store, { role: 'viewer' }, Date.now())).token;
    const { app } = buildApiApp({ herald });
    // An operator's LOCK TABLE in psql, left open.
    const operator = new pg.Client({ connectionString: database.url });
    await operator.connect();
    try {
      await operator.query('begin');
      await operator.query('lock table deliveries in access exclusive mode');
      const answer = await app.inject({
        method: 'GET',
        url: '/api/v1/deliveries',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(answer.statusCode).toBe(503);
      const body = answer.json() as { code: string; detail: string };
      expect(body.code).toBe('DATABASE_LOCK_TIMEOUT');
      expect(body.detail.toLowerCase()).not.toContain('select');
      expect(body.detail).not.toContain('deliveries');
    } finally {
      await operator.query('rollback').catch(() => {});
      await operator.end();
      await app.close();
      await herald.close();
      await database.drop();
    }
  }, 60_000);

  it('answers 503 instead of hanging when PostgreSQL goes silent (a partition: no reset, only silence)', async () => {
    const database = await createTestDatabase('postgres');
    const target = new URL(database.url);
    const proxy = await startCuttableProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const proxied = new URL(database.url);
    proxied.host = `${proxy.host}:${proxy.port}`;
    const herald = await openHerald({
      config: parseConfig({ database: { url: proxied.toString() } }, 'test'),
      logger: capturedLogger().logger,
    });
    const token = (await createToken(herald.store, { role: 'viewer' }, Date.now())).token;
    const { app } = buildApiApp({ herald, databaseDeadlineMs: 500 });
    const ask = () =>
      app.inject({ method: 'GET', url: '/api/v1/deliveries', headers: { authorization: `Bearer ${token}` } });
    try {
      // The pool now holds a connection, which the partition leaves open and silent.
      expect((await ask()).statusCode).toBe(200);
      proxy.blackhole();
      const answer = await ask();
      expect(answer.statusCode).toBe(503);
      expect(answer.headers['retry-after']).toBeDefined();
      expect((answer.json() as { code: string }).code).toBe('DATABASE_UNREACHABLE');
      proxy.resume();
    } finally {
      await app.close();
      await herald.close();
      await proxy.close();
      await database.drop();
    }
  }, 60_000);
});
