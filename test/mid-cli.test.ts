import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../src/common/clock.ts';
import { defaultMidsourcingConfig } from '../src/midsourcing/config.ts';
import { startExecutionServer, type ExecutionServer } from '../src/midsourcing/execution-server.ts';
import type { OutboundPartRow } from '../src/midsourcing/outbound-store.ts';
import { createPeerClient } from '../src/midsourcing/peer-client.ts';
import { pushDelivery } from '../src/midsourcing/push.ts';
import { diagnose, type OutboundStatus } from '../src/midsourcing/status.ts';
import { midSyncCountersWorkflow } from '../src/midsourcing/workflows.ts';
import { manualClock } from '../src/common/clock.ts';
import { parseConfig } from '../src/config/load.ts';
import { silentLogger } from '../src/common/logger.ts';
import { listParts } from '../src/midsourcing/outbound-store.ts';
import { seedPreparedDelivery } from '../src/midsourcing/testing/seed-prepared.ts';
import { openStore, type Store } from '../src/store/database.ts';
import { migrateToLatest } from '../src/store/migrate.ts';
import { createTestDatabase, type TestDatabase } from './support/databases.ts';
import { runHerald } from './support/cli.ts';

// `herald mid push|status|sync` against a real execution instance on loopback (SQLite both sides).

const secret = 'cli-test-shared-secret-0123456789';

describe('herald mid', () => {
  let marketingDb: TestDatabase;
  let executionDb: TestDatabase;
  let marketing: Store;
  let execution: Store;
  let server: ExecutionServer;
  let config: Record<string, unknown>;

  beforeAll(async () => {
    marketingDb = await createTestDatabase('sqlite');
    executionDb = await createTestDatabase('sqlite');
    marketing = openStore(marketingDb.url);
    execution = openStore(executionDb.url);
    await migrateToLatest(marketing);
    await migrateToLatest(execution);
    server = await startExecutionServer({
      store: execution,
      config: { ...defaultMidsourcingConfig(), mode: 'execution', peers: [{ name: 'marketing-1', secret }] },
      host: '127.0.0.1',
      port: 0,
    });
    config = {
      midsourcing: {
        mode: 'marketing',
        name: 'marketing-1',
        partSize: 7,
        peers: [{ name: 'exec-1', url: server.url, secret }],
      },
    };
  });
  afterAll(async () => {
    await server.close();
    await marketing.close();
    await execution.close();
    await marketingDb.drop();
    await executionDb.drop();
  });

  it('pushes a prepared delivery, then reports its parts, latencies and pull state; secrets never printed', async () => {
    const recipients = Array.from({ length: 30 }, (_, i) => ({
      email: `cli${i}@accept.test`,
      data: { first_name: 'C' },
    }));
    const { deliveryId } = await seedPreparedDelivery(marketing, {
      name: 'cli',
      recipients,
      validitySeconds: 3600,
      clock: systemClock,
    });

    const push = await runHerald(marketingDb.url, ['mid', 'push', String(deliveryId), '--json'], config);
    expect(push.exitCode).toBe(0);
    expect(push.json()[0]).toMatchObject({
      deliveryId,
      peer: 'exec-1',
      parts: 5,
      recipients: 30,
      remoteState: 'in_progress',
      duplicates: 0,
    });

    const again = await runHerald(marketingDb.url, ['mid', 'push', String(deliveryId), '--json'], config);
    expect(again.exitCode).toBe(0);
    expect(again.json()[0]).toMatchObject({ parts: 5, attempts: 0 });

    const sync = await runHerald(marketingDb.url, ['mid', 'sync', '--json'], config);
    expect(sync.exitCode).toBe(0);
    expect(sync.json()[0]).toMatchObject({ logs: { synced: 1, failed: [] }, counters: { synced: 1, failed: [] } });

    const status = await runHerald(marketingDb.url, ['mid', 'status', '--json'], config);
    const [report] = status.json<OutboundStatus>();
    expect(report).toMatchObject({
      deliveryId,
      peer: 'exec-1',
      state: 'finalized',
      remoteState: 'in_progress',
      parts: { total: 5, pending: 0, acked: 5 },
      timeouts: 0,
      lastError: null,
      logs: { complete: false },
      counters: { total: 30, pending: 30 },
    });
    expect(report!.buildMs.avg).not.toBeNull();
    expect(report!.appendMs.max).toBeGreaterThanOrEqual(report!.appendMs.avg!);

    const text = await runHerald(marketingDb.url, ['mid', 'status'], config);
    expect(text.stdout.join('\n')).toContain('parts 5/5 acknowledged');
    expect([...push.stdout, ...push.stderr, ...text.stdout, ...status.stdout].join('\n')).not.toContain(secret);

    const notPrepared = await runHerald(marketingDb.url, ['mid', 'push', '999', '--json'], config);
    expect(notPrepared.exitCode).toBe(1);
  });

  it('a push that gave up (peer down) is resumed by the mid-sync-counters workflow', async () => {
    // The push fails "6 minutes ago"; the workflow runs now (the server checks timestamps against the real clock).
    const clock = manualClock(Date.now() - 6 * 60_000);
    const recipients = Array.from({ length: 10 }, (_, i) => ({
      email: `stall${i}@accept.test`,
      data: { first_name: 'S' },
    }));
    const { deliveryId } = await seedPreparedDelivery(marketing, {
      name: 'stall',
      recipients,
      validitySeconds: 3600,
      clock,
    });
    // Port 9 (discard) is closed on loopback: every attempt is refused, retryably.
    const down = createPeerClient({
      peer: { name: 'exec-1', url: 'http://127.0.0.1:9', secret },
      localName: 'marketing-1',
      timeoutMs: 500,
      clock,
    });
    await expect(
      pushDelivery({
        store: marketing,
        client: down,
        deliveryId,
        partSize: 7,
        inFlight: 2,
        retry: { maxAttempts: 2, baseMs: 1, maxMs: 2 },
        clock,
      }),
    ).rejects.toMatchObject({
      code: 'MID_REMOTE_UNAVAILABLE',
    });
    down.close();

    clock.set(Date.now());
    const logs: string[] = [];
    const outcome = await midSyncCountersWorkflow.steps
      .find((step) => step.name === 'resume-pushes')!
      .run({
        store: marketing,
        config: parseConfig(config, 'test'),
        clock,
        logger: silentLogger,
        nodeId: 'n',
        runId: 1,
        log: async (message) => void logs.push(message),
        keepAlive: async () => {},
      });
    expect({ outcome, logs }).toMatchObject({ outcome: { kind: 'done', summary: '1/1 stalled pushes resumed' } });
    expect((await listParts(marketing, deliveryId)).map((part) => part.state)).toEqual(['acked', 'acked']);
    // The refusals before are over: status shows no last error for the finalized push.
    const status = await runHerald(
      marketingDb.url,
      ['mid', 'status', '--delivery', String(deliveryId), '--json'],
      config,
    );
    expect(status.json<OutboundStatus>()[0]).toMatchObject({ state: 'finalized', lastError: null, lastErrorAt: null });
  });

  it('herald delivery pause|resume|stop forward to the execution instance, or say it is queued; mid status shows whether it arrived', async () => {
    const recipients = Array.from({ length: 6 }, (_, i) => ({
      email: `state${i}@accept.test`,
      data: { first_name: 'S' },
    }));
    const { deliveryId } = await seedPreparedDelivery(marketing, {
      name: 'state-cli',
      recipients,
      validitySeconds: 3600,
      clock: systemClock,
    });
    const push = await runHerald(marketingDb.url, ['mid', 'push', String(deliveryId), '--json'], config);
    const remoteId = push.json<{ remoteId: number }>()[0]!.remoteId;
    const remoteState = async () =>
      (await execution.db.selectFrom('deliveries').select('state').where('id', '=', remoteId).executeTakeFirstOrThrow())
        .state;

    const pause = await runHerald(marketingDb.url, ['delivery', 'pause', String(deliveryId)], config);
    expect(pause.exitCode).toBe(0);
    expect(pause.stdout).toEqual([
      `delivery ${deliveryId} is paused`,
      `delivery ${deliveryId}: paused forwarded to exec-1 (version 1, applied); remote paused`,
    ]);
    expect(await remoteState()).toBe('paused');
    const resume = await runHerald(marketingDb.url, ['delivery', 'resume', String(deliveryId), '--json'], config);
    expect(resume.json()[0]).toMatchObject({
      id: deliveryId,
      state: 'in_progress',
      forwarding: {
        kind: 'forwarded',
        target: 'in_progress',
        version: 2,
        outcome: 'applied',
        remoteState: 'in_progress',
      },
    });

    // The execution instance is unreachable: the stop is applied here and queued for it.
    const down = {
      midsourcing: {
        ...(config.midsourcing as object),
        requestTimeoutMs: 500,
        retryBaseMs: 1,
        retryMaxMs: 2,
        peers: [{ name: 'exec-1', url: 'http://127.0.0.1:9', secret }],
      },
    };
    const stop = await runHerald(marketingDb.url, ['delivery', 'stop', String(deliveryId)], down);
    expect(stop.exitCode).toBe(0);
    expect(stop.stdout).toEqual([`delivery ${deliveryId} is stopped`]);
    expect(stop.stderr.join('\n')).toMatch(
      /forwarding stopped to exec-1 failed after 3 attempt\(s\): ECONNREFUSED.*queued: the mid-sync-counters workflow retries it/,
    );
    expect(await remoteState()).toBe('in_progress');
    const pending = await runHerald(
      marketingDb.url,
      ['mid', 'status', '--delivery', String(deliveryId), '--json'],
      config,
    );
    expect(pending.json<OutboundStatus>()[0]!.stateChange).toMatchObject({
      localState: 'stopped',
      target: 'stopped',
      version: 3,
      ackedVersion: 2,
      reached: false,
      attempts: 3,
      lastError: expect.stringContaining('ECONNREFUSED'),
    });
    const pendingText = await runHerald(marketingDb.url, ['mid', 'status', '--delivery', String(deliveryId)], config);
    expect(pendingText.stdout).toContain(
      '  state: stopped (version 3) NOT reached exec-1 yet: 3 attempt(s), last error ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9',
    );

    // The peer is back: `herald mid sync` (like the mid-sync-counters workflow) forwards it.
    const sync = await runHerald(marketingDb.url, ['mid', 'sync', '--json'], config);
    expect(sync.json()[0]).toMatchObject({
      states: [
        { kind: 'forwarded', deliveryId, target: 'stopped', version: 3, outcome: 'applied', remoteState: 'stopped' },
      ],
    });
    expect(await remoteState()).toBe('stopped');
    const reached = await runHerald(marketingDb.url, ['mid', 'status', '--delivery', String(deliveryId)], config);
    expect(reached.stdout.find((line) => line.startsWith('  state: '))).toMatch(
      /^ {2}state: stopped \(version 3\) reached exec-1: applied, remote stopped \(at \d{4}-/,
    );
  });

  it('refuses to push when the instance is not in marketing mode', async () => {
    const run = await runHerald(marketingDb.url, ['mid', 'push', '1'], {});
    expect(run.exitCode).toBe(1);
    expect(run.stderr.join('\n')).toContain('midsourcing.mode is "off"');
  });
});

describe('push diagnosis', () => {
  const part = (build: number, latency: number, attempts = 1, timeouts = 0): OutboundPartRow => ({
    delivery_id: 1,
    part_number: 1,
    first_log_id: 1,
    last_log_id: 2,
    recipients: 2,
    state: 'acked',
    part_key: 'k',
    bytes: 10,
    attempts,
    timeouts,
    build_ms: build,
    latency_ms: latency,
    last_error: null,
    acked_at: 1,
    updated_at: 1,
  });

  it('names the slow side', () => {
    expect(diagnose([part(400, 50), part(380, 60)])).toMatchObject({
      bottleneck: 'building',
      diagnosis: expect.stringContaining('marketing side is too slow building parts'),
    });
    expect(diagnose([part(10, 300), part(12, 280)])).toMatchObject({ bottleneck: 'appending' });
    expect(diagnose([part(10, 30, 4, 3), part(10, 30, 3, 2)])).toMatchObject({ bottleneck: 'network' });
    expect(diagnose([])).toMatchObject({ bottleneck: 'none' });
  });
});
