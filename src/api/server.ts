import { guardConnections } from '../common/connection-guard.ts';
import { addressMatcher } from '../common/connection-limits.ts';
import type { Server } from 'node:http';
import type { Herald } from '../main.ts';
import { createWebhookDispatcher } from '../webhooks/dispatcher.ts';
import { buildApiApp } from './app.ts';

// Role `api`: the app of app.ts listening on api.host:api.port. Stopping refuses new requests (503),
// lets those in flight finish, then waits for the imports they started. It also runs the webhook
// dispatcher.

export interface ApiServer {
  url: string;
  /** The listening server (its connections: tests, and whoever counts them). */
  server: Server;
  close(): Promise<void>;
}

export async function startApiServer(herald: Herald, port = herald.config.api.port): Promise<ApiServer> {
  const { app, whenIdle } = buildApiApp({ herald });
  const config = herald.config.api;
  // The dashboard shares this server: its caps and timeouts hold for both (docs/api.md, "Connections").
  guardConnections(app.server, {
    name: 'api',
    configSection: 'api',
    limits: config,
    ipv6PrefixLength: config.ipv6ClientPrefixLength,
    uncapped: addressMatcher(config.trustedProxies),
    logger: herald.logger,
    clock: herald.clock,
    onRefused: (reason) => herald.metrics.countRefusedConnection('api', reason),
  });
  const url = await app.listen({ host: config.host, port });
  // The api role also sends the event webhooks written to the outbox (docs/webhooks.md).
  const dispatcher = createWebhookDispatcher({ ...herald, config: herald.config.webhooks });
  dispatcher.start();
  return {
    url,
    server: app.server,
    close: async () => {
      await dispatcher.stop();
      await app.close();
      await whenIdle();
    },
  };
}
