import type { Server } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { allowedHostNames, hostRefusal } from '../api/allowed-hosts.ts';
import { databaseReachable } from '../api/api-store.ts';
import { guardConnections } from '../common/connection-guard.ts';
import type { ErrorCode } from '../common/errors.ts';
import { problem, statusOf } from '../api/problem.ts';
import type { Herald } from '../main.ts';
import { pendingMigrations } from '../store/migrate.ts';
import { registerPlatformCollector } from './platform-collector.ts';

// /metrics, /healthz and /readyz: on the API's port when the process runs the api role (app.ts adds
// them there), on metrics.port otherwise.

const collectorsOf = new WeakSet<Herald['metrics']>();

/** Registers the platform gauges once per registry. */
export function ensurePlatformCollector(herald: Herald): void {
  if (collectorsOf.has(herald.metrics)) return;
  collectorsOf.add(herald.metrics);
  registerPlatformCollector(herald, { cacheMs: herald.config.metrics.cacheSeconds * 1000 });
}

/** Adds GET /metrics (Prometheus text format) to an app. */
export function addMetricsRoute(app: FastifyInstance, herald: Herald): void {
  ensurePlatformCollector(herald);
  app.get('/metrics', async (_request, reply) => {
    const text = await herald.metrics.registry.metrics();
    return reply.type(herald.metrics.registry.contentType).send(text);
  });
}

export interface Readiness {
  ready: boolean;
  pendingMigrations: string[];
  /** Why not ready, when the check itself could not be made (the database unreachable or silent). */
  reason?: string;
}

// /readyz is unauthenticated (load balancers probe it), on the Internet-facing tracking port too,
// and a check costs database round trips and a read of the migration list: one check serves every
// probe for a second (calls meanwhile share it), so a flood of probes costs one check a second
// instead of taking the database and the event loop from the redirects (a 50-connection flood
// took /r/ from 11,600 to 94 answers/s).
const readinessCacheMs = 1_000;
/**
 * A database that does not answer (a partition: no reset, only silence) made every probe wait for
 * as long as the kernel kept the socket; now a check not answered within this is not ready, and it
 * is not repeated until the database has answered it (its queries would pile up on the pool).
 */
const readinessTimeoutMs = 2_000;

interface ReadinessCheck {
  startedAt: number;
  answered: boolean;
  state: Promise<Readiness>;
}
const readinessChecks = new WeakMap<Herald, ReadinessCheck>();

export function readiness(herald: Herald): Promise<Readiness> {
  const now = performance.now();
  const last = readinessChecks.get(herald);
  if (last && (now - last.startedAt < readinessCacheMs || !last.answered)) return last.state;
  const answer = checkReadiness(herald).finally(() => {
    check.answered = true;
  });
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<Readiness>((resolve) => {
    timer = setTimeout(() => {
      herald.logger.warn({ timeoutMs: readinessTimeoutMs }, 'readyz: the database did not answer in time');
      resolve(notAnswered);
    }, readinessTimeoutMs).unref();
  });
  const check: ReadinessCheck = {
    startedAt: now,
    answered: false,
    state: Promise.race([answer, silence]).finally(() => clearTimeout(timer)),
  };
  readinessChecks.set(herald, check);
  return check.state;
}

const notAnswered: Readiness = {
  ready: false,
  pendingMigrations: [],
  reason: `the database did not answer within ${readinessTimeoutMs / 1000} s`,
};

async function checkReadiness(herald: Herald): Promise<Readiness> {
  try {
    await databaseReachable(herald.store);
    const pending = await pendingMigrations(herald.store);
    return { ready: pending.length === 0, pendingMigrations: pending };
  } catch (error) {
    herald.logger.warn({ err: error }, 'readyz: database unreachable');
    return { ready: false, pendingMigrations: [], reason: 'the database is unreachable' };
  }
}

/**
 * GET /healthz (the process answers) and GET /readyz (database reachable, migrations current; 503
 * otherwise). `exposure: 'public'` (a port open to the Internet): /readyz gives the status only, not
 * the names of pending migrations.
 */
export function addHealthRoutes(
  app: FastifyInstance,
  herald: Herald,
  exposure: 'operators' | 'public' = 'operators',
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const state = await readiness(herald);
    const status = state.ready ? 'ready' : 'not_ready';
    return reply
      .code(state.ready ? 200 : 503)
      .send(
        exposure === 'public'
          ? { status }
          : { status, pendingMigrations: state.pendingMigrations, ...(state.reason && { reason: state.reason }) },
      );
  });
}

export interface MetricsServer {
  url: string;
  /** The listening server (its connections: tests, and whoever counts them). */
  server: Server;
  close(): Promise<void>;
}

export async function startMetricsServer(herald: Herald, port: number): Promise<MetricsServer> {
  const app = Fastify({ logger: false, return503OnClosing: true });
  const refuse = (request: FastifyRequest, reply: FastifyReply, code: ErrorCode, detail: string) => {
    const body = problem(code, detail, request.url.split('?')[0]!.slice(0, 500));
    return reply.code(statusOf(code)).type('application/problem+json').send(body);
  };
  // Nothing here takes a body, and Node reads a body to its end even once the request is answered:
  // a client declaring one and sending a byte every 5 s held its connection for good (no request
  // timeout on this port), as many as it opened, in the MTA's own process. Answered 413, closed.
  app.addHook('onRequest', async (request, reply) => {
    const declared = request.headers['content-length'];
    if (request.headers['transfer-encoding'] === undefined && (declared === undefined || Number(declared) === 0))
      return;
    reply.header('connection', 'close');
    reply.raw.once('finish', () => request.raw.destroy());
    return refuse(
      request,
      reply,
      'INPUT_TOO_LARGE',
      'this port takes no request body: /metrics, /healthz and /readyz are read with GET',
    );
  });
  // A DNS-rebinding page (its name re-resolved to 127.0.0.1) read /metrics from an operator's
  // browser: the names answered to are the API's rule (api/allowed-hosts.ts), with metrics' keys.
  const allowedHosts = allowedHostNames(herald.config.metrics);
  app.addHook('onRequest', async (request, reply) => {
    const refusal = hostRefusal(request.host, allowedHosts, 'metrics.allowedHosts');
    if (refusal) return refuse(request, reply, 'HOST_NOT_ALLOWED', refusal);
  });
  addMetricsRoute(app, herald);
  addHealthRoutes(app, herald);
  // No proxies here: Prometheus scrapes the port itself, so every address is counted per client.
  guardConnections(app.server, {
    name: 'metrics',
    configSection: 'metrics',
    limits: herald.config.metrics,
    logger: herald.logger,
    clock: herald.clock,
    onRefused: (reason) => herald.metrics.countRefusedConnection('metrics', reason),
  });
  const url = await app.listen({ host: herald.config.metrics.host, port });
  return { url, server: app.server, close: () => app.close() };
}
