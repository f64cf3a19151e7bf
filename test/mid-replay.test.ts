import { expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { randomId } from '../src/common/ids.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { defaultMidsourcingConfig, type MidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import { purgeMidSeenRequests, seenRequestsPurgeBefore } from '../src/midsourcing/seen-requests-purge.ts';
import { signRequest } from '../src/midsourcing/signing.ts';
import { midPaths, type SubmitRequest } from '../src/midsourcing/wire.ts';
import { openStore } from '../src/store/database.ts';
import { recordSeenRequest } from '../src/midsourcing/seen-request-store.ts';
import { cleanupWorkflow } from '../src/workflows/builtins/index.ts';
import { describeEachDialect } from './support/databases.ts';

// Replay protection kept in the database: a captured request is refused after the execution server
// restarts, and by any other execution process on the same database, inside the replay window.

const secret = 'first-marketing-secret-0123456789';
const start = Date.UTC(2026, 5, 1, 12);

describeEachDialect('mid-sourcing replay protection across restarts and processes', (context) => {
  const clock = manualClock(start);
  const config: MidsourcingConfig = {
    ...defaultMidsourcingConfig(),
    mode: 'execution',
    peers: [{ name: 'marketing-1', secret }],
  };
  const startServer = (store = context.store()) =>
    startExecutionServer({ store, config, clock, host: '127.0.0.1', port: 0 });

  /** A signed submit, captured: the same bytes and headers can be sent again. */
  function captured(marketingDeliveryId: number) {
    const submit: SubmitRequest = {
      marketingDeliveryId,
      name: `d${marketingDeliveryId}`,
      fromAddress: 'news@brand.test',
      fromName: null,
      replyTo: null,
      subject: 'Hi',
      html: 'Hi',
      text: null,
      validitySeconds: 3600,
      affinity: null,
      parts: 1,
      recipients: 1,
    };
    const body = Buffer.from(JSON.stringify(submit));
    const headers = signRequest({
      peer: 'marketing-1',
      secret,
      method: 'POST',
      path: midPaths.submit(),
      body,
      now: clock.now(),
      nonce: randomId(16),
    });
    return (server: ExecutionServer) =>
      fetch(`${server.url}${midPaths.submit()}`, {
        method: 'POST',
        body,
        headers: { ...headers, 'content-type': 'application/json' },
      });
  }

  async function outcome(response: Response) {
    return { status: response.status, body: await response.json() };
  }

  it('refuses a replay after the server is closed and started again on the same database, as an in-memory replay', async () => {
    const send = captured(1);
    const first = await startServer();
    let restarted: ExecutionServer | undefined;
    try {
      expect((await send(first)).status).toBe(200);
      const inMemory = await outcome(await send(first));
      expect(inMemory).toMatchObject({ status: 401, body: { error: { code: 'REPLAYED', retryable: false } } });
      await first.close();

      clock.advance(4 * 60_000); // still inside the 300 s window
      restarted = await startServer();
      expect(await outcome(await send(restarted))).toEqual(inMemory);
      // A fresh request is still accepted by the restarted server.
      expect((await captured(2)(restarted)).status).toBe(200);
    } finally {
      await first.close();
      await restarted?.close();
    }
  });

  it('refuses, on one of two servers sharing the database, a request the other accepted', async () => {
    const otherStore = openStore(context.url());
    const one = await startServer();
    const two = await startServer(otherStore);
    try {
      const send = captured(3);
      expect((await send(one)).status).toBe(200);
      expect(await outcome(await send(two))).toMatchObject({
        status: 401,
        body: { error: { code: 'REPLAYED', retryable: false } },
      });
      const other = captured(4);
      expect((await other(two)).status).toBe(200);
      expect(await outcome(await other(one))).toMatchObject({ status: 401, body: { error: { code: 'REPLAYED' } } });
      // Both at once: exactly one is accepted.
      const racing = captured(5);
      const statuses = (await Promise.all([racing(one), racing(two)])).map((response) => response.status).sort();
      expect(statuses).toEqual([200, 401]);
    } finally {
      await one.close();
      await two.close();
      await otherStore.close();
    }
  });

  it('purges, in batches, only the entries older than twice the replay window plus the margin', async () => {
    expect(cleanupWorkflow.steps.map((step) => step.name).slice(-2)).toEqual([
      'purge-mid-seen-requests',
      'database-maintenance',
    ]);
    const store = context.store();
    const now = start + 30 * 60_000;
    const before = seenRequestsPurgeBefore(now, config.replayWindowSeconds);
    expect(before).toBe(now - 20 * 60_000);
    const seen = store.db;
    await seen
      .insertInto('mid_seen_requests')
      .values(
        Array.from({ length: 250 }, (_, i) => ({ peer: 'purge-peer', nonce: `old-${i}`, seen_at: before - 1 - i })),
      )
      .execute();
    expect(await recordSeenRequest(store, 'purge-peer', 'at-limit', before)).toBe(true);
    expect(await recordSeenRequest(store, 'purge-peer', 'recent', now - 60_000)).toBe(true);

    // The requests accepted by the tests above were seen at `start` or 4 min later: old too.
    const old = await seen
      .selectFrom('mid_seen_requests')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('seen_at', '<', before)
      .executeTakeFirstOrThrow();
    expect(Number(old.n)).toBe(255);
    const messages: string[] = [];
    const purgeClock = manualClock(now);
    const settings = parseConfig(
      { workflows: { cleanup: { batchSize: 100 } }, midsourcing: { mode: 'execution' } },
      'test',
    );
    const result = await purgeMidSeenRequests.run({
      store,
      config: settings,
      clock: purgeClock,
      logger: silentLogger,
      nodeId: 'n',
      runId: 1,
      log: async (message) => void messages.push(message),
      keepAlive: async () => {},
    });
    // 255 rows at 100 per batch: three deleting batches and the empty one that ends the loop.
    expect(result).toEqual({ kind: 'done', summary: '255 rows deleted in 4 batches' });
    expect(messages).toEqual([
      'mid-sourcing request nonces older than twice the replay window (300 s) plus 10 min: deleted 255 rows in 4 batches of at most 100',
    ]);
    const left = await seen
      .selectFrom('mid_seen_requests')
      .select('nonce')
      .where('peer', '=', 'purge-peer')
      .orderBy('nonce')
      .execute();
    expect(left.map((row) => row.nonce)).toEqual(['at-limit', 'recent']);
    const others = await seen
      .selectFrom('mid_seen_requests')
      .select('nonce')
      .where('peer', '!=', 'purge-peer')
      .execute();
    expect(others).toEqual([]);
    // A purged nonce can be recorded again (its request would be refused as stale anyway).
    expect(await recordSeenRequest(store, 'purge-peer', 'old-0', now)).toBe(true);
    expect(await recordSeenRequest(store, 'purge-peer', 'recent', now)).toBe(false);
  });
});
