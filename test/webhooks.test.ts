import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { updateDeliveryState } from '../src/delivery/delivery-store.ts';
import { pauseDelivery, resumeDelivery, startDelivery } from '../src/delivery/lifecycle.ts';
import { runDoctor } from '../src/doctor/run-doctor.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { inTransaction } from '../src/store/database.ts';
import type { WebhooksConfig } from '../src/webhooks/config-schema.ts';
import { hostAddresses } from '../src/webhooks/destinations.ts';
import { createWebhookDispatcher, signWebhook } from '../src/webhooks/dispatcher.ts';
import {
  createSubscription,
  listSubscriptionViews,
  removeSubscription,
  resumeSubscriptionById,
  rotateSubscriptionSecret,
} from '../src/webhooks/subscriptions.ts';
import { insertSubscription } from '../src/webhooks/webhook-store.ts';
import { finishRun, insertRun } from '../src/workflows/workflow-store.ts';
import { capturedLogger } from './support/captured-log.ts';
import { runHerald } from './support/cli.ts';
import { describeEachDialect } from './support/databases.ts';
import { onePreparedDelivery } from './support/fixtures.ts';

// Event webhooks end to end on both dialects: a state change writes its event in its own transaction
// (a rolled-back change writes none), the dispatcher POSTs it signed to a real loopback receiver,
// retries after a failure with backoff, and pauses a subscription that keeps failing.

interface Received {
  path: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describeEachDialect('event webhooks', (context) => {
  const clock = manualClock(Date.parse('2026-09-01T12:00:00Z'));
  let herald: Herald;
  let receiver: Server;
  let url: string;
  const received: Received[] = [];
  let answer = 500;
  let webhooksConfig: WebhooksConfig;

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig(
        {
          database: { url: context.url() },
          // The receivers listen on loopback, denied by default.
          webhooks: { pauseAfterFailures: 3, firstRetrySeconds: 10, allowedNetworks: ['127.0.0.1/32'] },
        },
        'test',
      ),
      logger: silentLogger,
      clock,
    });
    webhooksConfig = herald.config.webhooks;
    receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ path: request.url, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
        response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await new Promise((resolve) => receiver.close(resolve));
    await herald?.close();
  });

  it('writes events with their change, signs them, retries with backoff, pauses a dead subscription', async () => {
    const subscription = await createSubscription(
      herald.store,
      { url, events: ['delivery.state', 'workflow.failed'] },
      clock.now(),
      webhooksConfig,
    );
    const dispatcher = createWebhookDispatcher({ ...herald, config: herald.config.webhooks });
    const deliveryId = await onePreparedDelivery(herald, 'a@b.example');

    await startDelivery(herald.store, deliveryId, clock.now());
    await pauseDelivery(herald.store, deliveryId, clock.now());
    // A change rolled back writes no event.
    await expect(
      inTransaction(herald.store, async (trx) => {
        await updateDeliveryState(trx, deliveryId, { to: 'in_progress', from: ['paused'], now: clock.now() });
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    const runId = await insertRun(herald.store, {
      workflow: 'cleanup',
      trigger: 'manual',
      holder: 'test',
      scheduledFor: null,
      missedSlots: 0,
      startStep: 0,
      restartOf: null,
      now: clock.now(),
    });
    await finishRun(herald.store, runId, { status: 'failed', failedStep: 2, error: 'disk full', now: clock.now() });
    expect((await listSubscriptionViews(herald.store))[0]!.backlog).toBe(3);

    // The receiver fails: nothing leaves the outbox, and nothing is retried before the backoff.
    expect(await dispatcher.runOnce()).toBe(0);
    expect(received).toHaveLength(1);
    expect(await dispatcher.runOnce()).toBe(0);
    expect(received).toHaveLength(1);
    expect((await listSubscriptionViews(herald.store))[0]).toMatchObject({
      consecutiveFailures: 1,
      lastError: 'HTTP 500',
      backlog: 3,
    });

    clock.advance(10_000);
    answer = 204;
    expect(await dispatcher.runOnce()).toBe(3);
    expect(received).toHaveLength(2);
    const last = received[1]!;
    const timestamp = Number(last.headers['x-herald-timestamp']);
    expect(last.headers['x-herald-signature']).toBe(signWebhook(subscription.secret, timestamp, last.body));
    expect(
      JSON.parse(last.body).events.map((e: { kind: string; data: Record<string, unknown> }) => [e.kind, e.data]),
    ).toEqual([
      ['delivery.state', expect.objectContaining({ deliveryId, from: 'prepared', to: 'in_progress' })],
      ['delivery.state', expect.objectContaining({ deliveryId, from: 'in_progress', to: 'paused' })],
      ['workflow.failed', expect.objectContaining({ workflow: 'cleanup', runId, failedStep: 2, error: 'disk full' })],
    ]);
    expect((await listSubscriptionViews(herald.store))[0]).toMatchObject({
      consecutiveFailures: 0,
      backlog: 0,
      lastError: null,
    });

    // A receiver that keeps failing: paused after pauseAfterFailures requests in a row; events wait.
    answer = 503;
    await updateDeliveryState(herald.store, deliveryId, { to: 'in_progress', from: ['paused'], now: clock.now() });
    for (let i = 0; i < 3; i++) {
      await dispatcher.runOnce();
      clock.advance(3_600_000);
    }
    expect((await listSubscriptionViews(herald.store))[0]).toMatchObject({
      state: 'paused',
      consecutiveFailures: 3,
      backlog: 1,
    });
    const diagnosis = await runDoctor(herald);
    expect(diagnosis.findings).toContainEqual(
      expect.objectContaining({
        check: 'webhooks',
        severity: 'warning',
        subject: `webhook ${subscription.id}`,
        fix: expect.stringContaining(`herald webhooks resume ${subscription.id}`),
      }),
    );
    const before = received.length;
    expect(await dispatcher.runOnce()).toBe(0);
    expect(received).toHaveLength(before);

    answer = 200;
    await resumeSubscriptionById(herald.store, subscription.id);
    expect(await dispatcher.runOnce()).toBe(1);
    await dispatcher.stop();
  });

  it('pauses a subscription at once when its receiver answers 410 Gone', async () => {
    const row = await createSubscription(
      herald.store,
      { url, events: ['delivery.state'] },
      clock.now(),
      webhooksConfig,
    );
    const dispatcher = createWebhookDispatcher({ ...herald, config: webhooksConfig });
    const deliveryId = await onePreparedDelivery(herald, 'gone@b.example');
    answer = 410;
    await startDelivery(herald.store, deliveryId, clock.now());
    await dispatcher.runOnce();
    await dispatcher.stop();
    // Before: active, retried like a 503 (here pauseAfterFailures is 3; 20, about 11 hours, by default).
    expect((await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)).toMatchObject({
      state: 'paused',
      consecutiveFailures: 1,
      backlog: 1,
      lastError: 'HTTP 410 Gone: the receiver says this URL no longer exists (paused at once)',
    });
    answer = 204;
    await removeSubscription(herald.store, row.id);
  });

  it('rotates a secret: both sign during the overlap, then only the new one', async () => {
    const oldSecret = 'the-old-secret-0123456789';
    const row = await createSubscription(
      herald.store,
      { url: `${url}/rotated`, events: ['delivery.state'], secret: oldSecret },
      clock.now(),
      webhooksConfig,
    );
    const dispatcher = createWebhookDispatcher({ ...herald, config: webhooksConfig });
    const deliveryId = await onePreparedDelivery(herald, 'rotate@b.example');
    const rotated = await rotateSubscriptionSecret(herald.store, row.id, { overlapHours: 1 }, clock.now());
    expect(rotated.secret).not.toBe(oldSecret);
    expect(rotated.previousSecretUntil).toBe(new Date(clock.now() + 3_600_000).toISOString());
    const signatures = async () => {
      const before = received.length;
      await dispatcher.runOnce();
      const last = received.slice(before).find((request) => request.path === '/hook/rotated')!;
      return { last, timestamp: Number(last.headers['x-herald-timestamp']) };
    };
    answer = 204;
    await startDelivery(herald.store, deliveryId, clock.now());
    const during = await signatures();
    expect(during.last.headers['x-herald-signature']).toBe(
      `${signWebhook(rotated.secret, during.timestamp, during.last.body)}, ${signWebhook(oldSecret, during.timestamp, during.last.body)}`,
    );
    clock.advance(3_600_000);
    await pauseDelivery(herald.store, deliveryId, clock.now());
    const after = await signatures();
    expect(after.last.headers['x-herald-signature']).toBe(
      signWebhook(rotated.secret, after.timestamp, after.last.body),
    );
    await dispatcher.stop();

    // From the CLI, a leaked secret stops signing at once; nonsense is refused, naming the option.
    const leaked = await runHerald(context.url(), [
      'webhooks',
      'rotate-secret',
      String(row.id),
      '--overlap-hours',
      '0',
    ]);
    expect(leaked.stdout).toEqual([
      expect.stringMatching(new RegExp(`^webhook ${row.id}: new secret: \\S{32,}$`)),
      'the previous secret no longer signs',
    ]);
    expect(leaked.stdout.join('\n')).not.toContain(rotated.secret);
    const nonsense = await runHerald(context.url(), [
      'webhooks',
      'rotate-secret',
      String(row.id),
      '--overlap-hours',
      '1.5',
    ]);
    expect(nonsense.stderr.join('\n')).toContain('--overlap-hours: a whole number of hours from 0 to 720 (got "1.5")');
    await expect(rotateSubscriptionSecret(herald.store, row.id, { secret: 'short' }, clock.now())).rejects.toThrow(
      'secret: at least 16 characters',
    );
    const listed = (await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)!;
    expect(listed.previousSecretUntil).toBeNull();
    expect(JSON.stringify(listed)).not.toContain(rotated.secret);
    await removeSubscription(herald.store, row.id);
  });

  it('halves its batches for a receiver whose body limit is below them (413), without counting failures', async () => {
    // express.json() refuses bodies over 100 kB by default: 500 message.sent events are about 125 kB.
    const limitBytes = 2_000;
    const ids: number[] = [];
    const limited = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length > limitBytes) return response.writeHead(413).end();
        ids.push(...(JSON.parse(body.toString('utf8')) as { events: Array<{ id: number }> }).events.map((e) => e.id));
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => limited.listen(0, '127.0.0.1', resolve));
    try {
      const row = await createSubscription(
        herald.store,
        { url: `http://127.0.0.1:${(limited.address() as AddressInfo).port}/hook`, events: ['message.sent'] },
        clock.now(),
        webhooksConfig,
      );
      const recipients = Array.from({ length: 40 }, (_, i) => ({ email: `limit${i}@b.example` }));
      const { deliveryId } = await seedDelivery(herald.store.db, {
        now: clock.now(),
        state: 'in_progress',
        recipients,
      });
      await herald.store.db
        .updateTable('delivery_logs')
        .set({ status: 'sent', attempts: 1, sent_at: clock.now() })
        .where('delivery_id', '=', deliveryId)
        .execute();
      const dispatcher = createWebhookDispatcher({ ...herald, config: webhooksConfig });
      // Before: every request was the whole batch, refused; the third refusal paused the subscription.
      for (let pass = 0; pass < 3; pass++) {
        await dispatcher.runOnce();
        clock.advance(3_600_000);
      }
      await dispatcher.stop();
      expect(ids).toHaveLength(40);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect((await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)).toMatchObject({
        state: 'active',
        consecutiveFailures: 0,
        backlog: 0,
      });
      await removeSubscription(herald.store, row.id);
    } finally {
      await new Promise((resolve) => limited.close(resolve));
    }
  });

  it('sends a batch from one dispatcher at a time when two api processes share the database', async () => {
    const ids: number[] = [];
    let firstArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => {
      firstArrived = resolve;
    });
    let held: ServerResponse | undefined;
    const shared = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        ids.push(
          ...(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { events: Array<{ id: number }> }).events.map(
            (e) => e.id,
          ),
        );
        // The first request waits for the test to answer it; any other is answered at once.
        if (held === undefined) {
          held = response;
          firstArrived();
        } else response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => shared.listen(0, '127.0.0.1', resolve));
    try {
      const row = await createSubscription(
        herald.store,
        { url: `http://127.0.0.1:${(shared.address() as AddressInfo).port}/hook`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      const deliveryId = await onePreparedDelivery(herald, 'shared@b.example');
      await startDelivery(herald.store, deliveryId, clock.now());
      const first = createWebhookDispatcher({ ...herald, config: webhooksConfig });
      const second = createWebhookDispatcher({ ...herald, config: webhooksConfig });
      const firstPass = first.runOnce();
      await arrived;
      // Before: the second process sent the same batch while the first one's was in flight.
      await second.runOnce();
      held!.writeHead(204).end();
      expect(await firstPass).toBe(1);
      await first.stop();
      await second.stop();
      expect(ids).toHaveLength(1);
      expect((await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)).toMatchObject({
        backlog: 0,
      });
      await removeSubscription(herald.store, row.id);
    } finally {
      shared.closeAllConnections();
      await new Promise((resolve) => shared.close(resolve));
    }
  });

  it('is managed with herald webhooks create|list|resume|delete', async () => {
    const created = await runHerald(context.url(), [
      'webhooks',
      'create',
      'https://crm.example/herald',
      '--event',
      'workflow.failed',
      '--json',
    ]);
    const [view] = created.json<{ id: number; secret: string; events: string[] }>();
    expect(view).toMatchObject({ events: ['workflow.failed'] });
    expect(view!.secret.length).toBeGreaterThanOrEqual(32);
    const listed = await runHerald(context.url(), ['webhooks', 'list', '--json']);
    expect(listed.json<{ webhooks: Array<{ id: number }> }>()[0]!.webhooks.map((w) => w.id)).toContain(view!.id);
    expect((await runHerald(context.url(), ['webhooks', 'resume', String(view!.id)])).stdout).toEqual([
      `webhook ${view!.id} resumed`,
    ]);
    expect((await runHerald(context.url(), ['webhooks', 'delete', String(view!.id)])).exitCode).toBe(0);
    const gone = await runHerald(context.url(), ['webhooks', 'delete', String(view!.id)]);
    expect(gone.stderr.join('\n')).toContain(`NOT_FOUND: no webhook subscription ${view!.id}`);
  });

  it('refuses bad subscriptions', async () => {
    await expect(
      createSubscription(
        herald.store,
        { url: 'ftp://x.example/', events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      ),
    ).rejects.toThrow('only http and https');
    await expect(
      createSubscription(herald.store, { url, events: ['message.read'] }, clock.now(), webhooksConfig),
    ).rejects.toThrow('unknown: message.read');
    const withPassword = url.replace('http://', 'http://crm:S3cr3tPassw0rd@');
    const refused = await createSubscription(
      herald.store,
      { url: withPassword, events: ['delivery.state'] },
      clock.now(),
      webhooksConfig,
    ).catch((error: Error) => error);
    expect((refused as Error).message).toMatch(/^url: a user name or password in the URL is never sent/);
    expect((refused as Error).message).not.toContain('S3cr3t');
    // Not a URL (port out of range): quoted, but not its password.
    const unparsed = await createSubscription(
      herald.store,
      { url: 'http://crm:S3cr3tPassw0rd@crm.example:99999/hook', events: ['delivery.state'] },
      clock.now(),
      webhooksConfig,
    ).catch((error: Error) => error);
    expect((unparsed as Error).message).toBe('url: "http://***@crm.example:99999/hook" is not a URL');
    // A denied network named literally is refused at once (loopback but 127.0.0.1, allowed here).
    for (const [denied, network] of [
      ['http://169.254.169.254/latest/meta-data/', '169.254.0.0/16'],
      ['http://127.0.0.2:8080/hook', '127.0.0.0/8'],
      ['http://[::1]:8080/hook', '::1/128'],
      ['http://0.0.0.0:8080/hook', '0.0.0.0/8'],
    ])
      await expect(
        createSubscription(herald.store, { url: denied!, events: ['delivery.state'] }, clock.now(), webhooksConfig),
      ).rejects.toThrow(`is in webhooks.deniedNetworks (${network}); add it to webhooks.allowedNetworks to allow it`);
    // This host's own address on its network, when it has one besides loopback.
    const own = hostAddresses().find((address) => isIP(address) === 4 && !address.startsWith('127.'));
    if (own)
      await expect(
        createSubscription(
          herald.store,
          { url: `http://${own}:8080/hook`, events: ['delivery.state'] },
          clock.now(),
          webhooksConfig,
        ),
      ).rejects.toThrow(`url: ${own} is an address of this host`);
  });

  it('refuses a subscription past webhooks.maxSubscriptions, naming the key', async () => {
    const existing = (await listSubscriptionViews(herald.store)).length;
    const config = { ...webhooksConfig, maxSubscriptions: existing + 2 };
    const request = { url: 'https://crm.example/herald', events: ['message.sent'] };
    const created = [
      await createSubscription(herald.store, request, clock.now(), config),
      await createSubscription(herald.store, request, clock.now(), config),
    ];
    await expect(createSubscription(herald.store, request, clock.now(), config)).rejects.toThrow(
      `webhooks.maxSubscriptions (${existing + 2}) reached: delete one you no longer use`,
    );
    expect(await listSubscriptionViews(herald.store)).toHaveLength(existing + 2);
    for (const subscription of created) await removeSubscription(herald.store, subscription.id);
  });

  it('refuses to connect to a name resolving to a denied address, and says so in lastError', async () => {
    const row = await createSubscription(
      herald.store,
      { url: 'http://metadata.example/latest/meta-data/', events: ['delivery.state'] },
      clock.now(),
      webhooksConfig,
    );
    const resolved: string[] = [];
    const dispatcher = createWebhookDispatcher({
      ...herald,
      config: herald.config.webhooks,
      resolve: async (hostname) => {
        resolved.push(hostname);
        return [{ address: '169.254.169.254', family: 4 }];
      },
    });
    const deliveryId = await onePreparedDelivery(herald, 'metadata@b.example');
    await startDelivery(herald.store, deliveryId, clock.now());
    await dispatcher.runOnce();
    await dispatcher.stop();
    expect(resolved).toEqual(['metadata.example']);
    expect((await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)).toMatchObject({
      consecutiveFailures: 1,
      backlog: 1,
      lastError:
        'destination refused: metadata.example resolves only to refused addresses: 169.254.169.254 is in webhooks.deniedNetworks (169.254.0.0/16); add it to webhooks.allowedNetworks to allow it',
    });
    await removeSubscription(herald.store, row.id);
  });

  it('drops the answer of a receiver streaming without end instead of reading it until the timeout', {
    timeout: 60_000,
  }, async () => {
    let written = 0;
    const chunk = Buffer.alloc(1 << 20, 120);
    const endless = createServer((request, response) => {
      request.resume();
      response.writeHead(200, { 'content-type': 'text/plain' });
      const pump = () => {
        while (!response.destroyed && response.write(chunk)) written += chunk.length;
      };
      response.on('drain', pump);
      pump();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    try {
      const row = await createSubscription(
        herald.store,
        { url: `http://127.0.0.1:${(endless.address() as AddressInfo).port}/hook`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      // The longest timeout there is: before, the pass lasted all of it (failing this test's own
      // timeout), buffering all the receiver sent meanwhile.
      const config = { ...herald.config.webhooks, timeoutMs: 120_000 };
      const dispatcher = createWebhookDispatcher({ ...herald, config });
      const deliveryId = await onePreparedDelivery(herald, 'endless@b.example');
      await startDelivery(herald.store, deliveryId, clock.now());
      await dispatcher.runOnce();
      await dispatcher.stop();
      const view = (await listSubscriptionViews(herald.store)).find((v) => v.id === row.id)!;
      expect(view).toMatchObject({ backlog: 0, consecutiveFailures: 0 });
      await removeSubscription(herald.store, row.id);
      expect(written).toBeLessThan(64 * (1 << 20));
    } finally {
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });

  it('lets subscriptions take turns, a batch each, so one backlog does not hold the others', async () => {
    const arrivals: string[] = [];
    const recorder = createServer((request, response) => {
      arrivals.push(request.url ?? '');
      request.resume();
      request.on('end', () => response.writeHead(204).end());
    });
    await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
    try {
      const busy = await createSubscription(
        herald.store,
        { url: `${base}/busy`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      const deliveryId = await onePreparedDelivery(herald, 'turns@b.example');
      await startDelivery(herald.store, deliveryId, clock.now());
      await pauseDelivery(herald.store, deliveryId, clock.now());
      const other = await createSubscription(
        herald.store,
        { url: `${base}/other`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      await resumeDelivery(herald.store, deliveryId, clock.now());
      const config = { ...herald.config.webhooks, batchSize: 1, concurrency: 1 };
      const dispatcher = createWebhookDispatcher({ ...herald, config });
      await dispatcher.runOnce();
      await dispatcher.stop();
      // Before: busy, busy, busy, other — the other receiver waited for the whole backlog.
      expect(arrivals).toEqual(['/busy', '/other', '/busy', '/busy']);
      await removeSubscription(herald.store, busy.id);
      await removeSubscription(herald.store, other.id);
    } finally {
      await new Promise((resolve) => recorder.close(resolve));
    }
  });

  it('keeps sending to the other subscriptions while one receiver holds its answer', { timeout: 60_000 }, async () => {
    const arrivals: string[] = [];
    const held: ServerResponse[] = [];
    let fastArrivals = 0;
    let fastDone: () => void = () => {};
    const allFast = new Promise<void>((resolve) => {
      fastDone = resolve;
    });
    const receivers = createServer((request, response) => {
      arrivals.push(request.url ?? '');
      request.resume();
      if (request.url === '/fast') {
        response.writeHead(204).end();
        if (++fastArrivals === 3) fastDone();
        return;
      }
      // The slow receiver answers only when the test lets it; a request it drops unanswered is noted.
      held.push(response);
      response.on('close', () => {
        if (!response.writableEnded) arrivals.push('/slow dropped');
      });
    });
    await new Promise<void>((resolve) => receivers.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(receivers.address() as AddressInfo).port}`;
    try {
      const slow = await createSubscription(
        herald.store,
        { url: `${base}/slow`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      const fast = await createSubscription(
        herald.store,
        { url: `${base}/fast`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      const deliveryId = await onePreparedDelivery(herald, 'slow@b.example');
      await startDelivery(herald.store, deliveryId, clock.now());
      await pauseDelivery(herald.store, deliveryId, clock.now());
      await resumeDelivery(herald.store, deliveryId, clock.now());
      // Before: the pass waited for the slow receiver's answer (here until the 15 s timeout) before
      // the fast one had its second batch.
      const config = { ...herald.config.webhooks, batchSize: 1, timeoutMs: 15_000 };
      const dispatcher = createWebhookDispatcher({ ...herald, config });
      const pass = dispatcher.runOnce();
      await allFast;
      for (const response of held) response.writeHead(204).end();
      const release = (request: IncomingMessage, response: ServerResponse) => {
        if (request.url === '/slow') response.writeHead(204).end();
      };
      receivers.on('request', release);
      held.length = 0;
      await pass;
      await dispatcher.stop();
      expect(arrivals.filter((arrival) => arrival !== '/slow').slice(0, 3)).toEqual(['/fast', '/fast', '/fast']);
      expect(arrivals).not.toContain('/slow dropped');
      const views = await listSubscriptionViews(herald.store);
      for (const id of [slow.id, fast.id])
        expect(views.find((view) => view.id === id)).toMatchObject({ backlog: 0, consecutiveFailures: 0 });
      await removeSubscription(herald.store, slow.id);
      await removeSubscription(herald.store, fast.id);
    } finally {
      receivers.closeAllConnections();
      await new Promise((resolve) => receivers.close(resolve));
    }
  });

  it('drops a request in flight when stopped instead of waiting for its answer, without blaming the receiver', {
    timeout: 30_000,
  }, async () => {
    let arrived: () => void = () => {};
    const requestArrived = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    const silent = createServer((request) => {
      request.resume();
      arrived();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const row = await createSubscription(
        herald.store,
        { url: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/hook`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      // Before: stop() (and so a SIGTERM of the api role) waited the whole timeout for the answer.
      const dispatcher = createWebhookDispatcher({ ...herald, config: { ...webhooksConfig, timeoutMs: 120_000 } });
      const deliveryId = await onePreparedDelivery(herald, 'silent@b.example');
      await startDelivery(herald.store, deliveryId, clock.now());
      const pass = dispatcher.runOnce();
      await requestArrived;
      await dispatcher.stop();
      await pass;
      expect((await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)).toMatchObject({
        backlog: 1,
        consecutiveFailures: 0,
        lastError: null,
      });
      await removeSubscription(herald.store, row.id);
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('waits for the backoff of a failing receiver however many events come, then sends them in order', async () => {
    const requests: string[][] = [];
    let status = 503;
    const own = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const { events } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          events: Array<{ data: { to: string } }>;
        };
        requests.push(events.map((event) => event.data.to));
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
    try {
      const row = await createSubscription(
        herald.store,
        { url: `http://127.0.0.1:${(own.address() as AddressInfo).port}/hook`, events: ['delivery.state'] },
        clock.now(),
        webhooksConfig,
      );
      const dispatcher = createWebhookDispatcher({ ...herald, config: webhooksConfig });
      const deliveryId = await onePreparedDelivery(herald, 'backoff@b.example');
      await startDelivery(herald.store, deliveryId, clock.now());
      await dispatcher.runOnce();
      // Before: each new event was due at once, so every pass sent a request whatever the backoff,
      // and the third (pauseAfterFailures) paused the subscription within the same second.
      await pauseDelivery(herald.store, deliveryId, clock.now());
      await dispatcher.runOnce();
      status = 204;
      await resumeDelivery(herald.store, deliveryId, clock.now());
      await dispatcher.runOnce();
      expect(requests).toEqual([['in_progress']]);
      expect((await listSubscriptionViews(herald.store)).find((view) => view.id === row.id)).toMatchObject({
        state: 'active',
        consecutiveFailures: 1,
        backlog: 3,
      });
      // Before: the receiver, back, got the newer events first (a receiver keeping the last id it
      // processed then ignored the older ones as a replay).
      clock.advance(10_000);
      await dispatcher.runOnce();
      expect(requests).toEqual([['in_progress'], ['in_progress', 'paused', 'in_progress']]);

      // Resumed by hand, its waiting events go at the next pass, not at their retry time.
      status = 503;
      await pauseDelivery(herald.store, deliveryId, clock.now());
      await dispatcher.runOnce();
      status = 204;
      await resumeSubscriptionById(herald.store, row.id);
      await dispatcher.runOnce();
      await dispatcher.stop();
      expect(requests.slice(2)).toEqual([['paused'], ['paused']]);
      await removeSubscription(herald.store, row.id);
    } finally {
      await new Promise((resolve) => own.close(resolve));
    }
  });

  it('keeps the password of a URL stored before such URLs were refused out of the log and lastError', async () => {
    const withPassword = url.replace('http://', 'http://crm:S3cr3tPassw0rd@');
    const row = await insertSubscription(herald.store, {
      url: withPassword,
      events: ['delivery.state'],
      secret: 'a-secret-of-enough-length',
      now: clock.now(),
    });
    const { logger, lines: logged } = capturedLogger();
    const dispatcher = createWebhookDispatcher({ ...herald, logger, config: herald.config.webhooks });
    const deliveryId = await onePreparedDelivery(herald, 'c@b.example');
    await startDelivery(herald.store, deliveryId, clock.now());
    await dispatcher.runOnce();
    await dispatcher.stop();
    const view = (await listSubscriptionViews(herald.store)).find((v) => v.id === row.id)!;
    expect(view.lastError).toContain('crm:***@');
    expect(view.lastError).not.toContain('S3cr3t');
    expect(logged.join('\n')).toContain('crm:***@');
    expect(logged.join('\n')).not.toContain('S3cr3t');
  });
});
