import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { randomId } from '../src/common/ids.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { signRequest } from '../src/midsourcing/signing.ts';
import { midPaths } from '../src/midsourcing/wire.ts';
import type { Store } from '../src/store/database.ts';
import { openMigratedDatabase, type TestDatabase } from './support/databases.ts';
import { midSubmitRequest } from './support/mid-submit.ts';

// The replay window bounds when a request was sent, not how long its body takes to arrive: a part
// uploaded over a slow link (with requestTimeoutMs raised on both sides for it) whose head came in
// time is not refused as STALE_TIMESTAMP once its body is in, with advice to fix clocks that agree.

const secret = 'slow-upload-shared-secret-0123456789';

describe('a body that takes longer than the replay window to arrive', () => {
  const clock = manualClock(Date.UTC(2026, 5, 1, 9));
  const config = {
    ...defaultMidsourcingConfig(),
    mode: 'execution' as const,
    requestTimeoutMs: 600_000,
    peers: [{ name: 'marketing-1', secret }],
  };
  let execution: { store: Store; database: TestDatabase };
  let server: ExecutionServer;
  beforeAll(async () => {
    execution = await openMigratedDatabase('sqlite');
    server = await startExecutionServer({ store: execution.store, config, clock, host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await execution?.store.close();
    await execution?.database.drop();
  });

  it('is verified against the time its head arrived', async () => {
    const body = Buffer.from(JSON.stringify(midSubmitRequest(1)));
    const headers = signRequest({
      peer: 'marketing-1',
      secret,
      method: 'POST',
      path: midPaths.submit(),
      body,
      now: clock.now(),
      nonce: randomId(16),
    }) as unknown as Record<string, string>;
    const request = httpRequest({
      host: '127.0.0.1',
      port: server.port,
      method: 'POST',
      path: midPaths.submit(),
      headers: { ...headers, 'content-length': String(body.length), 'content-type': 'application/json' },
    });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.on('response', (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => {
          text += chunk.toString('utf8');
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.on('error', reject);
    });
    // The head is in (the server checked it when it saw the request); the body trickles for 6 minutes.
    const headIn = new Promise<void>((resolve) => server.server.once('request', () => resolve()));
    request.write(body.subarray(0, 10));
    await headIn;
    clock.advance((config.replayWindowSeconds + 60) * 1000);
    request.end(body.subarray(10));
    const { status, body: text } = await answer;
    expect(status, text).toBe(200);
  });
});
