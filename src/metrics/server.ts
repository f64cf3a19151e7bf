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

export async function readiness(herald: Herald): Promise<{ ready: boolean; pendingMigrations: string[] }> {
  try {
    await databaseReachable(herald.store);
    const pending = await pendingMigrations(herald.store);
    return { ready: pending.length === 0, pendingMigrations: pending };
  } catch (error) {
    herald.logger.warn({ err: error }, 'readyz: database unreachable');
    return { ready: false, pendingMigrations: [] };
  }
}

/** GET /healthz (the process answers) and GET /readyz (database reachable, migrations current; 503 otherwise). */
export function addHealthRoutes(app: FastifyInstance, herald: Herald): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const state = await readiness(herald);
    return reply
      .code(state.ready ? 200 : 503)
      .send({ status: state.ready ? 'ready' : 'not_ready', pendingMigrations: state.pendingMigrations });
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
