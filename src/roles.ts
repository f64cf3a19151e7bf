import { startApiServer, type ApiServer } from './api/server.ts';
import { AppError } from './common/errors.ts';
import { startMetricsServer } from './metrics/server.ts';
import { composeMta } from './compose-mta.ts';
import { createInboundRole } from './bounce/inbound-role.ts';
import type { Herald } from './main.ts';
import { startExecutionServer, type ExecutionServer } from './midsourcing/execution-server.ts';
import { createTrackingService } from './tracking/service.ts';
import { createWorkflowEngine } from './workflows/engine.ts';

// The roles one process can run (`herald start --roles mta,workflows`). Each role is built from the
// opened Herald and has a start and a graceful stop; one line per role below.

export interface Role {
  name: string;
  start(): Promise<void>;
  /** Graceful: finish what is in flight, leave nothing half-done. */
  stop(): Promise<void>;
}

type RoleFactory = (herald: Herald) => Role | Promise<Role>;

const roleFactories: Record<string, RoleFactory> = {
  api: (herald) => {
    // The HTTP API on api.port (docs/api.md).
    let server: ApiServer | undefined;
    return {
      name: 'api',
      async start() {
        server = await startApiServer(herald);
        herald.logger.info({ url: server.url }, 'API listening');
      },
      stop: async () => server?.close(),
    };
  },
  mta: async (herald) => {
    const composed = await composeMta(herald);
    return { name: 'mta', start: () => composed.start(), stop: () => composed.stop() };
  },
  inbound: (herald) => createInboundRole(herald),
  mid: (herald) => {
    // The execution instance's mid-sourcing server (its own port); idle unless midsourcing.mode is execution.
    const config = herald.config.midsourcing;
    let server: ExecutionServer | undefined;
    return {
      name: 'mid',
      async start() {
        if (config.mode !== 'execution')
          return herald.logger.info({ mode: config.mode }, 'mid role idle: midsourcing.mode is not execution');
        server = await startExecutionServer({
          store: herald.store,
          config,
          clock: herald.clock,
          logger: herald.logger,
          onPartAppend: (seconds, outcome) => herald.metrics.observePartAppend('execution', seconds, outcome),
          onConnectionRefused: (reason) => herald.metrics.countRefusedConnection('mid', reason),
        });
        herald.logger.info(
          { url: server.url, peers: config.peers.map((peer) => peer.name) },
          'mid-sourcing server listening',
        );
      },
      stop: async () => server?.close(),
    };
  },
  tracking: async (herald) => {
    // Its own HTTP server on tracking.port, separate from the API.
    const service = await createTrackingService(herald);
    return {
      name: 'tracking',
      start: async () => herald.logger.info({ address: await service.listen() }, 'tracking server listening'),
      stop: () => service.close(),
    };
  },
  workflows: (herald) => {
    const engine = createWorkflowEngine({
      store: herald.store,
      config: herald.config,
      clock: herald.clock,
      logger: herald.logger,
      nodeId: herald.nodeId,
    });
    return { name: 'workflows', start: () => engine.start(), stop: () => engine.stop() };
  },
};

export const knownRoles = (): string[] => Object.keys(roleFactories);

export function parseRoles(value: string | undefined): string[] {
  if (value === undefined || value === 'all') return knownRoles();
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(name in roleFactories));
  if (unknown.length > 0 || names.length === 0) {
    throw new AppError(
      'INPUT_INVALID',
      `unknown role ${unknown.join(', ') || '(none)'}: choose among ${knownRoles().join(', ')}`,
    );
  }
  return names;
}

/**
 * Starts the roles, those listening on a port first (a port taken fails the start before the MTA sends
 * anything), the others in the order given; if one fails to start, those already started are stopped again.
 */
export async function startRoles(herald: Herald, names: string[]): Promise<Role[]> {
  const started: Role[] = [];
  try {
    // A process without the api role serves /metrics, /healthz and /readyz on metrics.port, if set.
    const metricsPort = herald.config.metrics.port;
    if (metricsPort !== null && !names.includes('api')) {
      const server = await startMetricsServer(herald, metricsPort).catch((error) => {
        throw listenError(error, 'metrics', herald);
      });
      started.push({ name: 'metrics', start: async () => {}, stop: () => server.close() });
      herald.logger.info({ url: server.url }, 'metrics listening');
    }
    for (const name of [...names.filter((n) => n in portKeys), ...names.filter((n) => !(n in portKeys))]) {
      const role = await roleFactories[name]!(herald);
      try {
        await role.start();
      } catch (error) {
        await role.stop().catch(() => {});
        throw listenError(error, name, herald);
      }
      started.push(role);
      herald.logger.info({ role: name }, 'role started');
    }
    return started;
  } catch (error) {
    await stopRoles(herald, started);
    throw error;
  }
}

/** The port each listening role takes, by configuration key. */
const portKeys: Record<string, (herald: Herald) => { key: string; host: string; port: number }> = {
  api: ({ config }) => ({ key: 'api.port', host: config.api.host, port: config.api.port }),
  metrics: ({ config }) => ({ key: 'metrics.port', host: config.metrics.host, port: config.metrics.port ?? 0 }),
  tracking: ({ config }) => ({ key: 'tracking.port', host: config.tracking.host, port: config.tracking.port }),
  inbound: ({ config }) => ({ key: 'inbound.port', host: config.inbound.host, port: config.inbound.port }),
  mid: ({ config }) => ({
    key: 'midsourcing.listen.port',
    host: config.midsourcing.listen.host,
    port: config.midsourcing.listen.port,
  }),
};

/** A port already taken becomes PORT_IN_USE naming the role and the key to change. */
function listenError(error: unknown, role: string, herald: Herald): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const ports = portKeys[role];
  if (!ports || (code !== 'EADDRINUSE' && code !== 'EACCES')) return error;
  const { key, host, port } = ports(herald);
  return new AppError(
    'PORT_IN_USE',
    `role ${role} cannot listen on ${host}:${port}: ${code === 'EADDRINUSE' ? 'the port is in use (another herald start?)' : 'permission denied'}; stop the other process or change ${key}`,
    { cause: error, details: { role, key, host, port } },
  );
}

/** Stops in reverse order, each even if another fails. */
export async function stopRoles(herald: Herald, roles: Role[]): Promise<void> {
  for (const role of [...roles].reverse()) {
    try {
      await role.stop();
      herald.logger.info({ role: role.name }, 'role stopped');
    } catch (error) {
      herald.logger.error({ role: role.name, err: error }, 'role failed to stop cleanly');
    }
  }
}
