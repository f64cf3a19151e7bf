import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createInboundRole, type InboundRole } from '../src/bounce/inbound-role.ts';
import { loadVerpSigner } from '../src/bounce/verp-keys.ts';
import { silentLogger } from '../src/common/logger.ts';
import { composeMta } from '../src/compose-mta.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { inTransaction } from '../src/store/database.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { analyzeHtmlTemplate } from '../src/tracking/links.ts';
import { createTrackingService, type TrackingService } from '../src/tracking/service.ts';
import { replaceTrackingLinks } from '../src/tracking/tracking-store.ts';
import { createDestinationPolicy } from '../src/webhooks/destinations.ts';
import { createWebhookDispatcher } from '../src/webhooks/dispatcher.ts';
import { createWebhookPoster } from '../src/webhooks/post-webhook.ts';
import { createSubscription } from '../src/webhooks/subscriptions.ts';
import { describeEachDialect } from './support/databases.ts';
import { waitFor } from './support/wait.ts';

// Per-message webhook events produced by the real paths, on both dialects: the MTA sending to the
// simulator (sent, failed), the tracking server (opened, clicked, unsubscribed by one-click POST),
// the inbound role (an asynchronous bounce, a complaint), delivered by the dispatcher to a loopback
// receiver that checks the signature and the timestamp as docs/webhooks.md tells receivers to.

const bounceDomain = 'bounces.brand.test';
const browser = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15';
const html = '<html><body><p>Hi {{ first_name }}, <a href="https://shop.example/sale">sale</a></p></body></html>';

interface ReceivedEvent {
  id: number;
  kind: string;
  data: Record<string, unknown>;
}

/** A receiver as a subscriber writes one: raw body, HMAC over "<timestamp>.<body>", a replay window. */
function startReceiver(secretOf: () => string, events: ReceivedEvent[], refused: string[]): Promise<Server> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const timestamp = String(request.headers['x-herald-timestamp'] ?? '');
      const expected = Buffer.from(
        `sha256=${createHmac('sha256', secretOf()).update(`${timestamp}.`).update(body).digest('hex')}`,
      );
      const given = Buffer.from(String(request.headers['x-herald-signature'] ?? ''));
      const signed = given.length === expected.length && timingSafeEqual(given, expected);
      const fresh = Math.abs(Date.now() - Number(timestamp)) < 5 * 60_000;
      if (!signed || !fresh) {
        refused.push(`signed ${signed}, fresh ${fresh}`);
        response.writeHead(401).end();
        return;
      }
      events.push(...(JSON.parse(body.toString('utf8')) as { events: ReceivedEvent[] }).events);
      response.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function sendMail(port: number, to: string, raw: string): Promise<string> {
  const connection = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, connectionTimeout: 5_000 });
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => resolve());
  });
  try {
    return await new Promise<string>((resolve, reject) =>
      connection.send({ from: '', to: [to] }, raw, (error, info) => (error ? reject(error) : resolve(info.response))),
    );
  } finally {
    connection.quit();
    connection.close();
  }
}

const report = (type: 'delivery-status' | 'feedback-report', parts: string[]) =>
  [
    'From: MAILER-DAEMON@mx.accept.test',
    'To: someone@brand.test',
    'Subject: report',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=${type}; boundary="b1"`,
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'A report.',
    '--b1',
    `Content-Type: message/${type}`,
    '',
    ...parts,
    '--b1',
    'Content-Type: text/rfc822-headers',
    '',
    'Subject: Hello',
    '--b1--',
    '',
  ].join('\r\n');
const dsnAbout = (recipient: string) =>
  report('delivery-status', [
    'Reporting-MTA: dns; mx.accept.test',
    '',
    `Final-Recipient: rfc822; ${recipient}`,
    'Action: failed',
    'Status: 5.1.1',
    `Diagnostic-Code: smtp; 550 5.1.1 <${recipient}>: Recipient address rejected: User unknown in local recipient table`,
  ]);
const complaintAbout = (recipient: string) =>
  report('feedback-report', [
    'Feedback-Type: abuse',
    'User-Agent: ISP-FBL/1.0',
    'Version: 1',
    `Original-Rcpt-To: ${recipient}`,
  ]);

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ keepMessages: true });
});
afterAll(async () => {
  await simulator.close();
});

describeEachDialect('per-message webhook events', (context) => {
  let herald: Herald;
  let tracking: TrackingService;
  let trackingBase = '';
  let inbound: InboundRole;
  let receiver: Server;
  let secret = '';
  const received: ReceivedEvent[] = [];
  const refused: string[] = [];

  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig(
        {
          database: { url: context.url() },
          tracking: { baseUrl: 'https://t.brand.test', port: 0, flushIntervalMs: 10 },
          inbound: { port: 0 },
          bounce: { siteRulesFile: '/nonexistent/site.yaml' },
          mta: { routes: simulator.routes, resolverServers: [simulator.dnsServer], pollIntervalMs: 50, bounceDomain },
          // The receiver listens on loopback, denied by default.
          webhooks: { allowedNetworks: ['127.0.0.1/32'] },
        },
        'test',
      ),
      logger: silentLogger,
    });
    tracking = await createTrackingService(herald);
    trackingBase = await tracking.listen();
    inbound = createInboundRole(herald);
    await inbound.start();
    receiver = await startReceiver(() => secret, received, refused);
  });
  afterAll(async () => {
    await new Promise((resolve) => receiver?.close(resolve));
    await inbound?.stop();
    await tracking?.close();
    await herald?.close();
  });

  it('reports each outcome of a message once, to the subscriptions that asked for its kind', async () => {
    const policy = createDestinationPolicy(herald.config.webhooks);
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const messageKinds = [
      'message.sent',
      'message.failed',
      'message.bounced',
      'message.complained',
      'message.unsubscribed',
      'message.opened',
      'message.clicked',
    ];
    const subscription = await createSubscription(
      herald.store,
      { url, events: messageKinds },
      Date.now(),
      herald.config.webhooks,
    );
    secret = subscription.secret;
    // Asks for delivery states only: no per-message row may be written for it.
    const statesOnly = await createSubscription(
      herald.store,
      { url: `${url}/states`, events: ['delivery.state'] },
      Date.now(),
      herald.config.webhooks,
    );

    const accepted = `ann.${context.dialect}@accept.test`;
    const refusedAddress = `unknown.${context.dialect}@unknown-users.test`;
    const { deliveryId, logIds } = await seedDelivery(herald.store.db, {
      now: Date.now(),
      recipients: [
        { email: accepted, data: { first_name: 'Ann' } },
        { email: refusedAddress, data: { first_name: 'Bob' } },
      ],
      html,
    });
    await replaceTrackingLinks(herald.store, deliveryId, analyzeHtmlTemplate(html).links);
    const [sentLogId, failedLogId] = logIds as [number, number];

    const mta = await composeMta(herald);
    await mta.start();
    try {
      await waitFor(async () => {
        const rows = await herald.store.db
          .selectFrom('delivery_logs')
          .select('status')
          .where('delivery_id', '=', deliveryId)
          .where('status', 'in', ['sent', 'failed'])
          .execute();
        return rows.length === 2;
      }, 'both messages to reach a final status');
    } finally {
      await mta.stop();
    }

    // The tracking server, through its real links, on its own port.
    const kept = [...simulator.sinks.values()]
      .flatMap((sink) => sink.keptMessages)
      .find((message) => message.recipients.includes(accepted))!;
    const raw = kept.data.toString('latin1').replace(/=\r\n/g, '').replace(/=3D/g, '=');
    const local = (path: string) => `${trackingBase}${path}`;
    const pathOf = (pattern: RegExp) => new URL(pattern.exec(raw)![1]!).pathname;
    const open = await fetch(local(pathOf(/src="(https:\/\/t\.brand\.test\/o\/[^"]+)"/)), {
      headers: { 'user-agent': browser },
    });
    expect(open.status).toBe(200);
    await open.arrayBuffer();
    const click = await fetch(local(pathOf(/href="(https:\/\/t\.brand\.test\/r\/[^"]+)"/)), {
      headers: { 'user-agent': browser },
      redirect: 'manual',
    });
    expect(click.status).toBe(302);
    expect(click.headers.get('location')).toBe('https://shop.example/sale');
    const unsubscribe = await fetch(local(pathOf(/^List-Unsubscribe: <(https:\/\/t\.brand\.test\/u\/[^>]+)>/m)), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'List-Unsubscribe=One-Click',
    });
    expect(unsubscribe.status).toBe(200);
    await unsubscribe.arrayBuffer();
    await tracking.events.flush();

    // The inbound role: a hard bounce after the 250, then a complaint, at the log's signed VERP address.
    const verp = (await loadVerpSigner(herald.store, herald.config, Date.now())).address(sentLogId, bounceDomain);
    expect(await sendMail(inbound.address()!.port, verp, dsnAbout(accepted))).toContain('hard');
    expect(await sendMail(inbound.address()!.port, verp, complaintAbout(accepted))).toContain('complaint');

    const outbox = await herald.store.db.selectFrom('webhook_outbox').select(['subscription_id', 'kind']).execute();
    expect(outbox.filter((row) => Number(row.subscription_id) === statesOnly.id).map((row) => row.kind)).not.toContain(
      'message.sent',
    );
    expect(
      outbox
        .filter((row) => row.kind.startsWith('message.'))
        .every((row) => Number(row.subscription_id) === subscription.id),
    ).toBe(true);

    // A fact rolled back writes no event (the trigger's insert is part of the same transaction).
    const before = outbox.length;
    await expect(
      inTransaction(herald.store, async (trx) => {
        await trx.db.updateTable('delivery_logs').set({ status: 'sent' }).where('id', '=', failedLogId).execute();
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await herald.store.db.selectFrom('webhook_outbox').select('id').execute()).toHaveLength(before);

    const dispatcher = createWebhookDispatcher({
      store: herald.store,
      config: herald.config.webhooks,
      clock: herald.clock,
      logger: silentLogger,
      post: (request) =>
        request.url.endsWith('/states')
          ? Promise.resolve({ kind: 'answered', status: 204 })
          : createWebhookPoster({ policy })(request),
    });
    await dispatcher.runOnce();
    expect(refused).toEqual([]);

    const byKind = new Map<string, ReceivedEvent[]>();
    for (const event of received) byKind.set(event.kind, [...(byKind.get(event.kind) ?? []), event]);
    expect([...byKind.keys()].sort()).toEqual([...messageKinds].sort());
    for (const [kind, events] of byKind) expect(events, kind).toHaveLength(1);
    const only = (kind: string) => byKind.get(kind)![0]!.data;
    expect(only('message.sent')).toMatchObject({ deliveryId, logId: sentLogId, email: accepted, replyCode: 250 });
    // The bounce after a 250 is reported as bounced; failed is the refusal in the SMTP session only.
    expect(only('message.failed')).toMatchObject({
      deliveryId,
      logId: failedLogId,
      email: refusedAddress,
      type: 'hard',
      reason: 'user_unknown',
      category: 'userunknown',
      replyCode: 550,
    });
    expect(only('message.bounced')).toMatchObject({ deliveryId, logId: sentLogId, email: accepted, type: 'hard' });
    expect(only('message.bounced').category).toEqual(expect.any(String));
    expect(only('message.complained')).toMatchObject({ deliveryId, logId: sentLogId, email: accepted });
    expect(only('message.unsubscribed')).toMatchObject({ deliveryId, logId: sentLogId, email: accepted });
    expect(only('message.opened')).toMatchObject({ deliveryId, logId: sentLogId, email: accepted, flags: 0 });
    expect(only('message.clicked')).toMatchObject({ deliveryId, logId: sentLogId, email: accepted, linkIndex: 0 });
    const ids = received.map((event) => event.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });
});
