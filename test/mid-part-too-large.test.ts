import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { getOutbound } from '../src/midsourcing/outbound-store.ts';
import { createPeerClient, type PeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';

// A part larger than the execution instance accepts (midsourcing.maxBodyBytes there) is refused
// every time: pushing again cannot help, nor can a smaller partSize here (a push keeps the parts it
// planned). The operator is told what to change, on which instance.

const secret = 'too-large-shared-secret-0123456789';

describe('a part over the execution instance maxBodyBytes', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  let marketing: { store: Store; database: TestDatabase };
  let execution: { store: Store; database: TestDatabase };
  let server: ExecutionServer;
  let client: PeerClient;
  beforeAll(async () => {
    marketing = await openMigratedDatabase('sqlite');
    execution = await openMigratedDatabase('sqlite');
    server = await startExecutionServer({
      store: execution.store,
      config: {
        ...defaultMidsourcingConfig(),
        mode: 'execution',
        maxBodyBytes: 64 * 1024,
        peers: [{ name: 'marketing-1', secret }],
      },
      clock,
      host: '127.0.0.1',
      port: 0,
    });
    client = createPeerClient({
      peer: { name: 'exec-1', url: server.url, secret },
      localName: 'marketing-1',
      timeoutMs: 5_000,
      clock,
    });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
    await marketing?.store.close();
    await execution?.store.close();
    await marketing?.database.drop();
    await execution?.database.drop();
  });

  it('names the setting to raise on the execution instance, not "push again"', async () => {
    // 200 recipients with 800 random characters each: about 160 KB of gzip in one part.
    const { deliveryId } = await seedPreparedDelivery(marketing.store, {
      name: 'big',
      recipients: Array.from({ length: 200 }, (_, i) => ({
        email: `big${i}@accept.test`,
        data: { first_name: 'B', blob: randomBytes(600).toString('base64') },
      })),
      validitySeconds: 3600,
      clock,
    });
    const error = await pushDelivery({
      store: marketing.store,
      client,
      deliveryId,
      partSize: 200,
      inFlight: 1,
      retry: { maxAttempts: 2, baseMs: 1, maxMs: 2 },
      clock,
    }).then(
      () => undefined,
      (thrown: Error) => thrown,
    );
    const lastError = (await getOutbound(marketing.store, deliveryId))?.last_error;
    for (const text of [error?.message, lastError]) {
      expect(text).toContain('BODY_TOO_LARGE');
      expect(text).toContain('raise midsourcing.maxBodyBytes on exec-1');
      expect(text).not.toContain('push again to resume');
    }
  });
});
