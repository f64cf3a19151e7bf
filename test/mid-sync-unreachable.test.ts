import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/common/clock.ts';
import { defaultMidsourcingConfig, type MidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { syncAll } from '../src/midsourcing/sync.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import type { Store } from '../src/store/database.ts';
import { startCuttableProxy, type CuttableProxy } from './support/cuttable-proxy.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';

// One execution instance blackholed (packets vanish: every attempt times out) must cost one delivery's
// retries per pass, not one per delivery it holds, and must not hold up the other instances' pulls.

const secret = 'unreachable-test-secret-0123456789';

describe('a pull pass with one execution instance blackholed', () => {
  let marketing: { store: Store; database: TestDatabase };
  let execution: { store: Store; database: TestDatabase };
  let server: ExecutionServer;
  let proxy: CuttableProxy;
  let config: MidsourcingConfig;

  beforeAll(async () => {
    marketing = await openMigratedDatabase('sqlite');
    execution = await openMigratedDatabase('sqlite');
    server = await startExecutionServer({
      store: execution.store,
      config: { ...defaultMidsourcingConfig(), mode: 'execution', peers: [{ name: 'marketing-1', secret }] },
      host: '127.0.0.1',
      port: 0,
    });
    proxy = await startCuttableProxy({ host: '127.0.0.1', port: server.port });
    config = {
      ...defaultMidsourcingConfig(),
      mode: 'marketing',
      name: 'marketing-1',
      maxAttempts: 2,
      retryBaseMs: 1,
      retryMaxMs: 2,
      requestTimeoutMs: 300,
      peers: [
        { name: 'exec-1', url: `http://${proxy.host}:${proxy.port}`, secret },
        { name: 'exec-2', url: server.url, secret },
      ],
    };
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
    await marketing?.store.close();
    await execution?.store.close();
    await marketing?.database.drop();
    await execution?.database.drop();
  });

  it('asks the blackholed instance for one delivery only, and pulls the other instance', async () => {
    const pushTo = async (peer: string, name: string) => {
      const { deliveryId } = await seedPreparedDelivery(marketing.store, {
        name,
        recipients: [{ email: `${name}@accept.test`, data: { first_name: 'U' } }],
        validitySeconds: 3600,
        clock: systemClock,
      });
      const client = createPeerClient({
        peer: config.peers.find((entry) => entry.name === peer)!,
        localName: 'marketing-1',
        timeoutMs: 5_000,
      });
      await pushDelivery({
        store: marketing.store,
        client,
        deliveryId,
        partSize: 10,
        inFlight: 1,
        retry: { maxAttempts: 2, baseMs: 1, maxMs: 2 },
      });
      client.close();
      return deliveryId;
    };
    const held = [await pushTo('exec-1', 'held-a'), await pushTo('exec-1', 'held-b'), await pushTo('exec-1', 'held-c')];
    const healthy = await pushTo('exec-2', 'healthy');

    proxy.blackhole();
    const connectionsBefore = proxy.accepted();
    const pass = await syncAll(marketing.store, config, 'counters');

    // One delivery's attempts (maxAttempts, a fresh connection each after a timeout), not three deliveries'.
    expect(proxy.accepted() - connectionsBefore).toBe(config.maxAttempts);
    expect(pass.results).toEqual([expect.objectContaining({ deliveryId: healthy, state: 'in_progress' })]);
    expect(pass.failed.map((failure) => failure.deliveryId)).toEqual(held);
    expect(pass.failed[0]!.error).toContain('TIMEOUT');
    for (const skipped of pass.failed.slice(1))
      expect(skipped.error).toBe(`skipped: exec-1 did not answer for delivery ${held[0]} earlier in this pass`);
  });
});
