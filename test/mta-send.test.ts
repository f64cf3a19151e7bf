import { afterAll, beforeAll, expect, it } from 'vitest';
import { manualClock } from '../src/common/clock.ts';
import { configSchema } from '../src/config/schema.ts';
import { mainThreadSigner, type DkimSigner } from '../src/mta/dkim-signer.ts';
import { verifyDkimSignatures } from '../src/mta/dkim-verify.ts';
import { createMta, type MtaConfig } from '../src/mta/queue-runner.ts';
import { generatedDkimKey } from '../src/mta/testing/generated-dkim-key.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { startSimulator, type Simulator } from '../src/sim/simulator.ts';
import { startSmtpSink } from '../src/sim/smtp-sink.ts';
import { createMtaStore } from '../src/mta/queue-store.ts';
import type { SmtpReply } from '../src/bounce/smtp-reply.ts';
import type { Verdict } from '../src/bounce/types.ts';
import { describeEachDialect } from './support/databases.ts';
import { startScriptedSmtpServer } from './support/scripted-smtp-server.ts';
import { waitFor } from './support/wait.ts';

let simulator: Simulator;
beforeAll(async () => {
  simulator = await startSimulator({ keepMessages: true });
});
afterAll(async () => {
  await simulator.close();
});

function mtaConfig(overrides: Partial<MtaConfig> = {}): MtaConfig {
  return configSchema.parse({
    mta: {
      heloName: 'mta.herald.test',
      bounceDomain: 'bounces.brand.test',
      routes: simulator.routes,
      resolverServers: [simulator.dnsServer],
      // The stalled simulator hosts (slow.test, stall-data.test) never answer: a timeout only has to be
      // longer than a healthy host's answer on a loaded machine, and each stall costs the test one.
      // 400 ms deferred healthy hosts' messages in 5 of 6 runs (3 per dialect) at a load of 17 on 2 cores.
      connectTimeoutMs: 2_000,
      commandTimeoutMs: 2_000,
      dataTimeoutMs: 2_000,
      retryDelaysSeconds: [60, 120],
      pollIntervalMs: 50,
      ...overrides,
    },
  }).mta;
}

/** A fresh Ed25519 DKIM key for brand.test. */
function ed25519Key() {
  return generatedDkimKey('ed25519-sha256', 'ed1').key;
}

/** r0@domain … r{count-1}@domain, each with a first name. */
function numberedRecipients(count: number, domain: string) {
  return Array.from({ length: count }, (_, i) => ({ email: `r${i}@${domain}`, data: { first_name: `R${i}` } }));
}

describeEachDialect('MTA sending through the simulator', (context) => {
  // Both dialects share the simulator: recipients are tagged with the dialect to keep counts apart.
  const tagged = (email: string) => email.replace('@', `.${context.dialect}@`);

  it('stores each recipient’s reply: sent, hard failures, soft failures retried on schedule, then expired', async () => {
    const { db } = context.store();
    const clock = manualClock(Date.UTC(2026, 2, 1));
    const t0 = clock.now();
    const recipients = [
      'ann@accept.test',
      'bob@gmail.test',
      'unknown1@unknown-users.test',
      'known@unknown-users.test',
      'full1@full.test',
      'carl@greylist.test',
      'dora@backup.test',
      'ed@nomx.test',
      'fay@nullmx.test',
      'gus@nxdomain.test',
      'hal@down.test',
      'ivy@busy.test',
      'jo@drop.test',
      'kim@slow.test',
      'lea@stall-data.test',
    ].map((email) => ({ email: tagged(email), data: { first_name: 'Pat' } }));
    // validity: the 60 s retry fits, the 120 s one does not.
    const { deliveryId } = await seedDelivery(db, { now: t0, recipients, validUntil: t0 + 100_000 });
    const mta = createMta({
      store: createMtaStore(context.store()),
      nodeId: `send-${context.dialect}`,
      config: mtaConfig(),
      clock,
    });
    await mta.start();
    try {
      await mta.drain();
      const rows = async () =>
        new Map(
          (await db.selectFrom('delivery_logs').selectAll().where('delivery_id', '=', deliveryId).execute()).map(
            (row) => [row.email.replace(`.${context.dialect}@`, '@'), row],
          ),
        );
      let byEmail = await rows();
      expect(byEmail.get('ann@accept.test')).toMatchObject({
        status: 'sent',
        attempts: 1,
        last_reply_code: 250,
        mx_host: 'mx.accept.test',
        sent_at: t0,
      });
      expect(byEmail.get('known@unknown-users.test')).toMatchObject({ status: 'sent' });
      expect(byEmail.get('dora@backup.test')).toMatchObject({ status: 'sent', mx_host: 'mx2.backup.test' });
      expect(byEmail.get('ed@nomx.test')).toMatchObject({ status: 'sent', mx_host: 'nomx.test' });
      expect(byEmail.get('unknown1@unknown-users.test')).toMatchObject({
        status: 'failed',
        attempts: 1,
        last_reply_code: 550,
        last_enhanced_status: '5.1.1',
        failure_type: 'hard',
        failure_reason: 'user_unknown',
        failure_category: 'userunknown',
      });
      expect(byEmail.get('unknown1@unknown-users.test')?.last_reply_text).toContain('does not exist');
      expect(byEmail.get('fay@nullmx.test')).toMatchObject({
        status: 'failed',
        failure_type: 'hard',
        failure_reason: 'invalid_domain',
        last_enhanced_status: '5.1.10',
      });
      expect(byEmail.get('gus@nxdomain.test')).toMatchObject({
        status: 'failed',
        failure_type: 'hard',
        failure_reason: 'invalid_domain',
      });
      for (const email of [
        'full1@full.test',
        'carl@greylist.test',
        'hal@down.test',
        'ivy@busy.test',
        'jo@drop.test',
        'kim@slow.test',
        'lea@stall-data.test',
      ]) {
        expect(byEmail.get(email), email).toMatchObject({
          status: 'pending',
          attempts: 1,
          next_attempt_at: t0 + 60_000,
          failure_type: 'soft',
          claimed_by: null,
        });
      }
      expect(byEmail.get('full1@full.test')).toMatchObject({
        last_reply_code: 452,
        last_enhanced_status: '4.2.2',
        failure_reason: 'mailbox_full',
      });
      expect(byEmail.get('carl@greylist.test')).toMatchObject({ last_reply_code: 451, last_enhanced_status: '4.7.1' });
      expect(byEmail.get('hal@down.test')).toMatchObject({
        last_reply_code: null,
        failure_reason: 'unreachable',
        failure_category: 'networkerror',
      });
      expect(byEmail.get('ivy@busy.test')).toMatchObject({ last_reply_code: 421 });
      expect(byEmail.get('kim@slow.test')?.last_reply_text).toMatch(/greeting|timeout/i);
      // Faults never count as sent: the sinks accepted nothing from these.
      for (const email of ['jo@drop.test', 'lea@stall-data.test', 'ivy@busy.test'])
        expect(simulator.acceptedCount(tagged(email))).toBe(0);

      // Second attempt, 60 s later: greylisting passes, the rest is deferred again or expires.
      clock.advance(60_000);
      await mta.drain();
      byEmail = await rows();
      expect(byEmail.get('carl@greylist.test')).toMatchObject({ status: 'sent', attempts: 2, failure_type: null });
      // The next retry (120 s later) would start after the validity end: expired now.
      expect(byEmail.get('full1@full.test')).toMatchObject({
        status: 'failed',
        attempts: 2,
        failure_type: 'soft',
        failure_reason: 'expired',
        failure_category: 'mailboxfull',
        last_reply_code: 452,
      });
      expect(byEmail.get('hal@down.test')).toMatchObject({ status: 'failed', failure_reason: 'expired' });
      expect([...byEmail.values()].every((row) => row.status === 'sent' || row.status === 'failed')).toBe(true);
      const delivery = await db
        .selectFrom('deliveries')
        .select(['state', 'finished_at'])
        .where('id', '=', deliveryId)
        .executeTakeFirstOrThrow();
      expect(delivery).toMatchObject({ state: 'finished' });
      expect(mta.stats()).toMatchObject({ sent: 6, inFlight: 0, queued: 0 });
    } finally {
      await mta.stop();
    }
  });

  it('retries an ignored verdict (an auto-reply in the SMTP dialogue) like a soft one, and stops a hard one at once', async () => {
    const { db } = context.store();
    const clock = manualClock(Date.UTC(2026, 3, 1));
    const t0 = clock.now();
    const recipients = ['full2@full.test', 'unknown2@unknown-users.test'].map((email) => ({
      email: tagged(email),
      data: { first_name: 'Pat' },
    }));
    const { deliveryId } = await seedDelivery(db, { now: t0, recipients, validUntil: t0 + 100_000 });
    // A classifier that calls "mailbox full" an auto-reply (ignored) keeps 5.1.1 hard.
    const classify = (reply: SmtpReply): Verdict =>
      reply.code === 452
        ? { type: 'ignored', reason: 'ignored', category: 'vacation', ruleId: 'away', packVersion: 't1' }
        : { type: 'hard', reason: 'user_unknown', category: 'userunknown', ruleId: 'unknown', packVersion: 't1' };
    const mta = createMta({
      store: createMtaStore(context.store()),
      nodeId: `ignored-${context.dialect}`,
      config: mtaConfig(),
      clock,
      classify,
    });
    await mta.start();
    try {
      await mta.drain();
      const rows = await db
        .selectFrom('delivery_logs')
        .selectAll()
        .where('delivery_id', '=', deliveryId)
        .orderBy('email')
        .execute();
      const [full, unknown] = rows;
      expect(full).toMatchObject({
        status: 'pending',
        attempts: 1,
        failure_type: 'ignored',
        next_attempt_at: t0 + 60_000,
      });
      expect(unknown).toMatchObject({ status: 'failed', attempts: 1, failure_type: 'hard' });
    } finally {
      await mta.stop();
    }
  });

  it('writes VERP, Message-ID, Date, X-Herald-Log-Id, no injected headers, and DKIM signatures that verify', async () => {
    const { db } = context.store();
    const rsa = generatedDkimKey('rsa-sha256', 'rsa1');
    const ed = generatedDkimKey('ed25519-sha256', 'ed1');
    const keys = new Map([['brand.test', [rsa.key, ed.key]]]);
    const email = `headers-${context.dialect}@accept.test`;
    const now = Date.now();
    const { logIds } = await seedDelivery(db, {
      now,
      recipients: [{ email, data: { first_name: 'Eve\r\nBcc: victim@example.test' } }],
      replyTo: 'care@brand.test',
    });
    const mta = createMta({
      store: createMtaStore(context.store()),
      nodeId: `headers-${context.dialect}`,
      config: mtaConfig(),
      dkimKeys: keys,
    });
    await mta.start();
    await mta.drain();
    await mta.stop();
    const kept = simulator.sinks
      .get('mx.accept.test')!
      .keptMessages.find((message) => message.recipients.includes(email));
    expect(kept?.sender).toBe(`bounce+${logIds[0]}@bounces.brand.test`);
    const raw = kept!.data.toString('utf8');
    const headers = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect(headers).toMatch(/^Message-ID: <[^@\s]+@brand\.test>$/m);
    expect(headers).toMatch(/^Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/m);
    expect(headers).toContain(`X-Herald-Log-Id: ${logIds[0]}`);
    expect(headers).toContain('Subject: Hello Eve Bcc: victim@example.test');
    expect(headers).not.toMatch(/^Bcc:/im);
    const checks = verifyDkimSignatures(raw, (_domain, _selector, algorithm) =>
      algorithm === 'rsa-sha256' ? rsa.publicKey : ed.publicKey,
    );
    expect(checks.map((check) => [check.algorithm, check.bodyHashOk && check.signatureOk])).toEqual([
      ['rsa-sha256', true],
      ['ed25519-sha256', true],
    ]);
  });
  it("records every outcome when a recipient's own MX answers with a NUL in its reply (PostgreSQL refuses NULs in text)", async () => {
    // Any address at a domain its signer controls: that domain's MX writes the reply Herald stores.
    const server = await startScriptedSmtpServer({
      pipelining: true,
      reply: (command) => (/^RCPT TO:<evil@/i.test(command) ? '550 5.1.1 no such user \u0000 here' : undefined),
    });
    try {
      const { db } = context.store();
      const recipients = ['ann', 'evil', 'bob', 'cid'].map((name) => ({
        email: `${name}@nul-reply.test`,
        data: { first_name: name },
      }));
      const { deliveryId } = await seedDelivery(db, { now: Date.now(), recipients });
      const mta = createMta({
        store: createMtaStore(context.store()),
        nodeId: `nul-reply-${context.dialect}`,
        config: mtaConfig({ routes: [{ match: 'nul-reply.test', host: '127.0.0.1', port: server.port }] }),
      });
      await mta.start();
      await mta.drain();
      await mta.stop();
      const rows = await db
        .selectFrom('delivery_logs')
        .select(['email', 'status', 'last_reply_text'])
        .where('delivery_id', '=', deliveryId)
        .orderBy('id')
        .execute();
      expect(rows).toEqual([
        { email: 'ann@nul-reply.test', status: 'sent', last_reply_text: expect.any(String) },
        { email: 'evil@nul-reply.test', status: 'failed', last_reply_text: 'no such user \ufffd here' },
        { email: 'bob@nul-reply.test', status: 'sent', last_reply_text: expect.any(String) },
        { email: 'cid@nul-reply.test', status: 'sent', last_reply_text: expect.any(String) },
      ]);
    } finally {
      await server.close();
    }
  }, 20_000);

  it('hands a tarpitting MX’s surplus back to the database, so other domains are not held behind it', async () => {
    // Anyone can subscribe an address at a domain whose MX greets and never answers MAIL: its
    // messages, claimed first, used to fill the memory the claim loop waits on (half of maxQueued).
    const tarpit = await startScriptedSmtpServer({
      pipelining: false,
      reply: (line) => (/^MAIL FROM/i.test(line) ? null : undefined),
    });
    const sink = await startSmtpSink({ hostname: 'mx.healthy.test' });
    try {
      const { db } = context.store();
      const now = Date.now();
      // One delivery (two would split each claim between them): the tarpit's recipients due first.
      const { deliveryId } = await seedDelivery(db, {
        now,
        recipients: [...numberedRecipients(100, 'tarpit.test'), ...numberedRecipients(5, 'healthy.test')],
      });
      await db
        .updateTable('delivery_logs')
        .set({ next_attempt_at: now - 60_000 })
        .where('domain', '=', 'tarpit.test')
        .execute();
      const mta = createMta({
        store: createMtaStore(context.store()),
        nodeId: `tarpit-${context.dialect}`,
        config: mtaConfig({
          routes: [
            { match: 'tarpit.test', host: '127.0.0.1', port: tarpit.port },
            { match: 'healthy.test', host: sink.host, port: sink.port },
          ],
          maxQueued: 60,
          maxConnectionsPerMx: 2,
          holdHorizonMs: 200,
          // Without the hand-back, the healthy domain waited for ~29 of these, 2 messages at a time.
          commandTimeoutMs: 3_000,
        }),
      });
      await mta.start();
      try {
        await waitFor(() => sink.stats().messagesAccepted === 5, 'the healthy domain’s 5 messages', 20_000);
      } finally {
        await mta.stop();
      }
      const statuses = async (domain: string) =>
        (
          await db
            .selectFrom('delivery_logs')
            .select('status')
            .where('delivery_id', '=', deliveryId)
            .where('domain', '=', domain)
            .execute()
        ).map((row) => row.status);
      expect(await statuses('healthy.test')).toEqual(Array(5).fill('sent'));
      // Nothing of the tarpit's domain is lost or left claimed: each is pending again (timed out and
      // deferred, handed back, or released by stop()).
      expect(await statuses('tarpit.test')).toEqual(Array(100).fill('pending'));
      // The next tests' MTAs have no route to the tarpit.
      await db.updateTable('deliveries').set({ state: 'stopped' }).where('id', '=', deliveryId).execute();
    } finally {
      await sink.close();
      await tarpit.close();
    }
  }, 30_000);
  it('loses nothing when the next pipelined message is still being signed as its connection spends its budget', async () => {
    // Signing in a worker makes every build wait: the next message of a connection is started when
    // the previous one's content is written and may still be building when that one ends the budget.
    const sink = await startSmtpSink({ hostname: 'mx.budget.test' });
    try {
      const { db } = context.store();
      const keys = new Map([['brand.test', [ed25519Key()]]]);
      const count = 60;
      await seedDelivery(db, { now: Date.now(), recipients: numberedRecipients(count, 'budget.test') });
      const mta = createMta({
        store: createMtaStore(context.store()),
        nodeId: `budget-${context.dialect}`,
        config: mtaConfig({
          routes: [{ match: 'budget.test', host: sink.host, port: sink.port }],
          maxMessagesPerConnection: 3,
          maxConnectionsPerMx: 4,
          dkimWorkers: 1,
          // Timeouts are not what this test is about: 400 ms deferred 4 of 60 once, on a machine at
          // load 15 where a command's answer took longer.
          connectTimeoutMs: 10_000,
          commandTimeoutMs: 10_000,
          dataTimeoutMs: 10_000,
        }),
        dkimKeys: keys,
      });
      await mta.start();
      await mta.drain();
      await mta.stop();
      expect(mta.stats()).toMatchObject({ sent: count, deferred: 0, failed: 0 });
      const stats = sink.stats();
      expect(stats.messagesAccepted).toBe(count);
      expect(stats.maxMessagesPerConnection).toBeLessThanOrEqual(3);
      expect(stats.connections).toBeGreaterThanOrEqual(count / 3);
    } finally {
      await sink.close();
    }
  });
  it('signs on its own thread when no DKIM worker can start, and sends everything signed', async () => {
    // The workers get a key they cannot read (the MTA parsed a good one): they fail at start, the
    // messages handed to them go back untried, and the main thread signs them when they come again.
    const sink = await startSmtpSink({ hostname: 'mx.noworker.test', keepMessages: true });
    try {
      const { db } = context.store();
      const ed = generatedDkimKey('ed25519-sha256', 'ed1');
      const key = { ...ed.key, pem: 'not a key' };
      const count = 12;
      await seedDelivery(db, { now: Date.now(), recipients: numberedRecipients(count, 'noworker.test') });
      const mta = createMta({
        store: createMtaStore(context.store()),
        nodeId: `noworker-${context.dialect}`,
        config: mtaConfig({ routes: [{ match: 'noworker.test', host: sink.host, port: sink.port }], dkimWorkers: 1 }),
        dkimKeys: new Map([['brand.test', [key]]]),
      });
      await mta.start();
      await mta.drain();
      await mta.stop();
      expect(mta.stats()).toMatchObject({ sent: count, failed: 0 });
      expect(sink.keptMessages).toHaveLength(count);
      for (const message of sink.keptMessages) {
        const checks = verifyDkimSignatures(message.data.toString('utf8'), () => ed.publicKey);
        expect(checks.map((check) => check.signatureOk && check.bodyHashOk)).toEqual([true]);
      }
    } finally {
      await sink.close();
    }
  });
  it('signs the next message of a path ahead of its turn, and each message once', async () => {
    // With DKIM in a worker, a build waits for the worker's round trip: the job next in line is
    // prepared ahead (PoolJob.prepare), so a connection taking it finds it signed. One connection,
    // the first signing held: a second one starts before anything is sent (without preparing
    // ahead, the held message would time its connection out and be deferred).
    const sink = await startSmtpSink({ hostname: 'mx.ahead.test' });
    try {
      const { db } = context.store();
      const key = ed25519Key();
      const signedFor: string[] = [];
      let releaseFirst!: () => void;
      const firstReleased = new Promise<void>((resolve) => {
        releaseFirst = resolve;
      });
      let secondSigned!: () => void;
      const secondCall = new Promise<void>((resolve) => {
        secondSigned = resolve;
      });
      const gatedSigner: DkimSigner = {
        async sign(headers, body, keys, nowMs) {
          signedFor.push(headers.find((line) => line.startsWith('To:'))!);
          if (signedFor.length === 1) await firstReleased;
          if (signedFor.length === 2) secondSigned();
          return mainThreadSigner.sign(headers, body, keys, nowMs);
        },
        close: async () => {},
      };
      const count = 8;
      await seedDelivery(db, { now: Date.now(), recipients: numberedRecipients(count, 'ahead.test') });
      const mta = createMta({
        store: createMtaStore(context.store()),
        nodeId: `ahead-${context.dialect}`,
        config: mtaConfig({
          routes: [{ match: 'ahead.test', host: sink.host, port: sink.port }],
          maxConnectionsPerMx: 1,
        }),
        dkimKeys: new Map([['brand.test', [key]]]),
        dkimSigner: gatedSigner,
      });
      await mta.start();
      await secondCall;
      expect(sink.stats().messagesAccepted).toBe(0);
      releaseFirst();
      await mta.drain();
      await mta.stop();
      expect(mta.stats()).toMatchObject({ sent: count, deferred: 0, failed: 0 });
      expect(sink.stats().messagesAccepted).toBe(count);
      expect(new Set(signedFor).size).toBe(count);
      expect(signedFor).toHaveLength(count);
    } finally {
      await sink.close();
    }
  });
  it('forgets the path of a domain once its messages are sent and its connections closed', async () => {
    // Every recipient domain makes a path; kept forever, they grew the MTA by ~1 KiB per domain
    // ever sent to (22 MiB after 20,000 domains of one wildcard zone, repro/path-leak.ts).
    const sink = await startSmtpSink({ hostname: 'mx.paths.test' });
    try {
      const { db } = context.store();
      const domains = ['p1.paths.test', 'p2.paths.test', 'p3.paths.test'];
      await seedDelivery(db, {
        now: Date.now(),
        recipients: domains.map((domain) => ({ email: `r@${domain}`, data: { first_name: 'Pat' } })),
      });
      const mta = createMta({
        store: createMtaStore(context.store()),
        nodeId: `paths-${context.dialect}`,
        config: mtaConfig({
          routes: [
            ...domains.map((match) => ({ match, host: sink.host, port: sink.port })),
            // Unreachable: its path ends without ever opening a connection.
            { match: 'refused.paths.test', host: '127.0.0.1', port: 9 },
          ],
        }),
      });
      await seedDelivery(db, { now: Date.now(), recipients: [{ email: 'r@refused.paths.test', data: {} }] });
      await mta.start();
      try {
        await mta.drain();
        expect(mta.stats()).toMatchObject({ sent: 3, deferred: 1 });
        // Idle connections close after 2 s, then their slots after connectionCloseGraceMs.
        await waitFor(
          () => mta.stats().connectionsOpen === 0 && mta.stats().paths === 0,
          'every path forgotten',
          10_000,
        );
      } finally {
        await mta.stop();
      }
    } finally {
      await sink.close();
    }
  });
});
