import Fastify, { type FastifyInstance } from 'fastify';
import { databaseReachable } from '../api/api-store.ts';
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
}

// /readyz is unauthenticated (load balancers probe it), on the Internet-facing tracking port too,
// and a check costs database round trips and a read of the migration list: one check serves every
// probe for a second (calls meanwhile share it), so a flood of probes costs one check a second
// instead of taking the database and the event loop from the redirects (a 50-connection flood
// took /r/ from 11,600 to 94 answers/s).
const readinessCacheMs = 1_000;
const readinessChecks = new WeakMap<Herald, { startedAt: number; state: Promise<Readiness> }>();

export function readiness(herald: Herald): Promise<Readiness> {
  const now = performance.now();
  const last = readinessChecks.get(herald);
  if (last && now - last.startedAt < readinessCacheMs) return last.state;
  const state = checkReadiness(herald);
  readinessChecks.set(herald, { startedAt: now, state });
  return state;
}

async function checkReadiness(herald: Herald): Promise<Readiness> {
  try {
    await databaseReachable(herald.store);
    const pending = await pendingMigrations(herald.store);
    return { ready: pending.length === 0, pendingMigrations: pending };
  } catch (error) {
    herald.logger.warn({ err: error }, 'readyz: database unreachable');
    return { ready: false, pendingMigrations: [] };
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
      .send(exposure === 'public' ? { status } : { status, pendingMigrations: state.pendingMigrations });
  });
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(herald: Herald, port: number): Promise<MetricsServer> {
  const app = Fastify({ logger: false, return503OnClosing: true });
  addMetricsRoute(app, herald);
  addHealthRoutes(app, herald);
  const url = await app.listen({ host: herald.config.metrics.host, port });
  return { url, close: () => app.close() };
}
