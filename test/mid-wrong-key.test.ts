import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/common/clock.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { getOutbound } from '../src/midsourcing/outbound-store.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';

// A wrong key on one side: the execution instance answers an unknown peer and a bad signature alike
// (names cannot be probed), but each operator is told what to compare, and no secret is printed.

const secret = 'the-right-shared-secret-0123456789';
const wrongSecret = 'a-wrong-shared-secret-9876543210';

describe('a wrong mid-sourcing key', () => {
  let marketing: { store: Store; database: TestDatabase };
  let execution: { store: Store; database: TestDatabase };
  let server: ExecutionServer;
  const executionLog: string[] = [];

  beforeAll(async () => {
    marketing = await openMigratedDatabase('sqlite');
    execution = await openMigratedDatabase('sqlite');
    server = await startExecutionServer({
      store: execution.store,
      config: { ...defaultMidsourcingConfig(), mode: 'execution', peers: [{ name: 'marketing-1', secret }] },
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'warn' }, { write: (line: string) => void executionLog.push(line) }),
    });
  });
  afterAll(async () => {
    await server?.close();
    await marketing?.store.close();
    await execution?.store.close();
    await marketing?.database.drop();
    await execution?.database.drop();
  });

  const push = async (localName: string, peerSecret: string) => {
    const { deliveryId } = await seedPreparedDelivery(marketing.store, {
      name: `wrong-key-${localName}-${peerSecret.slice(0, 5)}`,
      recipients: [{ email: `${localName}@accept.test`, data: { first_name: 'K' } }],
      validitySeconds: 3600,
      clock: systemClock,
    });
    const client = createPeerClient({
      peer: { name: 'exec-1', url: server.url, secret: peerSecret },
      localName,
      timeoutMs: 2_000,
    });
    try {
      const error = await pushDelivery({
        store: marketing.store,
        client,
        deliveryId,
        partSize: 10,
        inFlight: 1,
        retry: { maxAttempts: 3, baseMs: 1, maxMs: 2 },
      }).then(
        () => undefined,
        (thrown: Error) => thrown,
      );
      return { error, lastError: (await getOutbound(marketing.store, deliveryId))?.last_error ?? null };
    } finally {
      client.close();
    }
  };

  it('tells the marketing operator which names and secrets to compare, and the execution operator which is wrong', async () => {
    executionLog.length = 0;
    const wrong = await push('marketing-1', wrongSecret);
    // Unsigned (the execution server cannot sign it): retried, then given up as unavailable.
    expect(wrong.error).toMatchObject({ code: 'MID_REMOTE_UNAVAILABLE' });
    for (const text of [wrong.error!.message, wrong.lastError!]) {
      expect(text).toContain('BAD_SIGNATURE');
      expect(text).toContain(
        'exec-1 must list this instance in its midsourcing.peers as "marketing-1" (this instance\'s midsourcing.name) with the same secret as the "exec-1" entry here',
      );
      expect(text).not.toContain(wrongSecret);
      expect(text).not.toContain(secret);
    }
    const [line] = executionLog.map((entry) => JSON.parse(entry) as Record<string, unknown>);
    expect(line).toMatchObject({
      code: 'BAD_SIGNATURE',
      peer: 'marketing-1',
      hint: expect.stringContaining('the secret of midsourcing.peers "marketing-1" here differs'),
    });

    executionLog.length = 0;
    await push('marketing-9', secret);
    const [unknown] = executionLog.map((entry) => JSON.parse(entry) as Record<string, unknown>);
    expect(unknown).toMatchObject({
      peer: 'marketing-9',
      hint: 'no midsourcing.peers entry is named "marketing-9" here (known: marketing-1)',
    });
    expect(executionLog.join('\n')).not.toContain(secret);
  });
});
