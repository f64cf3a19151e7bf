import type { Herald } from '../main.ts';
import { createWebhookDispatcher } from '../webhooks/dispatcher.ts';
import { buildApiApp } from './app.ts';

// Role `api`: the app of app.ts listening on api.host:api.port. Stopping refuses new requests (503),
// lets those in flight finish, then waits for the imports they started. It also runs the webhook
// dispatcher.

export interface ApiServer {
  url: string;
  close(): Promise<void>;
}

export async function startApiServer(herald: Herald, port = herald.config.api.port): Promise<ApiServer> {
  const { app, whenIdle } = buildApiApp({ herald });
  const url = await app.listen({ host: herald.config.api.host, port });
  // The api role also sends the event webhooks written to the outbox (docs/webhooks.md).
  const dispatcher = createWebhookDispatcher({ ...herald, config: herald.config.webhooks });
  dispatcher.start();
  return {
    url,
    close: async () => {
      await dispatcher.stop();
      await app.close();
      await whenIdle();
    },
  };
}
