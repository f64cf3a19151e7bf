import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createInboundRole, type InboundRole } from '../src/bounce/inbound-role.ts';
import { parseBounceMessage } from '../src/bounce/parse-bounce.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald, type Herald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { inboundCounters, listInboundSamples } from '../src/bounce/qualification-store.ts';
import { addressTimeline, getAddress } from '../src/quarantine/quarantine-store.ts';
import { loadVerpSigner } from '../src/bounce/verp-keys.ts';
import { createVerpSigner, type VerpSigner } from '../src/bounce/verp.ts';
import { describeEachDialect } from './support/databases.ts';
import { bounceCorpusDir } from './support/corpus.ts';

const corpus = bounceCorpusDir;
const bounceDomain = 'bounces.brand.test';
const maxMessageBytes = 256 * 1024;

interface SendResult {
  accepted: boolean;
  code?: number;
  response?: string;
  error?: string;
}

/** Sends one raw message over a real SMTP session; refusals are values, not exceptions. */
async function send(port: number, to: string, raw: string | Buffer): Promise<SendResult> {
  const connection = new SMTPConnection({
    host: '127.0.0.1',
    port,
    ignoreTLS: true,
    connectionTimeout: 5_000,
    socketTimeout: 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => resolve());
  });
  try {
    return await new Promise<SendResult>((resolve) => {
      connection.send({ from: '', to: [to] }, raw, (error, info) => {
        if (error)
          resolve({ accepted: false, code: (error as { responseCode?: number }).responseCode, error: error.message });
        else resolve({ accepted: true, response: info.response });
      });
    });
  } finally {
    connection.quit();
    connection.close();
  }
}

/** A corpus bounce addressed to the VERP address of `logId`: envelope and To header rewritten. */
function readCorpus(file: string, verp: string): string {
  return readFileSync(join(corpus, file), 'latin1').replace(/^To:.*$/m, `To: ${verp}`);
}

async function recipientOf(file: string): Promise<string> {
  const parsed = await parseBounceMessage(readFileSync(join(corpus, file)));
  return parsed.recipients[0]!.recipient;
}

/** An RFC 3464 report for `email` sent to `verpAddress`; a failed 5.1.1 unless `fields` says otherwise. */
const dsnFor = (
  verpAddress: string,
  email: string,
  fields: { messageId?: string; action?: string; status?: string; diagnostic?: string } = {},
) =>
  [
    'From: MAILER-DAEMON@mx.example.net',
    `To: ${verpAddress}`,
    ...(fields.messageId ? [`Message-ID: ${fields.messageId}`] : []),
    'Subject: Undelivered Mail Returned to Sender',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
    '',
    '--B',
    'Content-Type: text/plain',
    '',
    `Delivery to ${email} failed.`,
    '--B',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.example.net',
    '',
    `Final-Recipient: rfc822; ${email}`,
    `Action: ${fields.action ?? 'failed'}`,
    `Status: ${fields.status ?? '5.1.1'}`,
    `Diagnostic-Code: smtp; ${fields.diagnostic ?? '550 5.1.1 No such user'}`,
    '--B--',
    '',
  ].join('\r\n');

describeEachDialect('inbound SMTP role', (context) => {
  let herald: Herald;
  let role: InboundRole;
  let port: number;
  let signer: VerpSigner;
  beforeAll(async () => {
    herald = await openHerald({
      config: parseConfig(
        {
          database: { url: context.url() },
          mta: { bounceDomain },
          inbound: {
            port: 0,
            maxMessageBytes,
            sampleBytes: 4_096,
            keepSamples: 5,
            feedbackAddress: `fbl@${bounceDomain}`,
          },
          bounce: { siteRulesFile: '/nonexistent/site.yaml' },
        },
        'test',
      ),
      logger: silentLogger,
    });
    role = createInboundRole(herald);
    await role.start();
    signer = await loadVerpSigner(herald.store, herald.config, Date.now());
    port = role.address()!.port;
  });
  afterAll(async () => {
    await role?.stop();
    await herald?.close();
  });

  async function sentLog(email: string): Promise<{ deliveryId: number; logId: number }> {
    const now = Date.now();
    const { deliveryId, logIds } = await seedDelivery(herald.store.db, { now, recipients: [{ email }] });
    await herald.store.db
      .updateTable('delivery_logs')
      .set({ status: 'sent', attempts: 1, last_reply_code: 250, sent_at: now })
      .where('id', '=', logIds[0]!)
      .execute();
    return { deliveryId, logId: logIds[0]! };
  }
  const verp = (logId: number) => signer.address(logId, bounceDomain);

  it('a hard DSN after a 250 fails the delivery log and quarantines the address', async () => {
    const file = 'lhost-postfix-04.eml';
    const email = await recipientOf(file);
    const { deliveryId, logId } = await sentLog(email);
    const result = await send(port, verp(logId), readCorpus(file, verp(logId)));
    expect(result).toMatchObject({ accepted: true });
    expect(result.response).toContain('hard');
    const log = await herald.store.db
      .selectFrom('delivery_logs')
      .selectAll()
      .where('id', '=', logId)
      .executeTakeFirstOrThrow();
    expect(log).toMatchObject({
      status: 'failed',
      failure_type: 'hard',
      failure_reason: 'user_unknown',
      failure_category: 'userunknown',
    });
    expect(await getAddress(herald.store, email)).toMatchObject({ state: 'quarantined', reason: 'user_unknown' });
    const [entry] = await addressTimeline(herald.store, email);
    expect(entry).toMatchObject({
      source: 'bounce',
      delivery_id: deliveryId,
      delivery_log_id: logId,
      category: 'userunknown',
      type: 'hard',
    });
    expect(entry!.rule_id).toEqual(expect.any(String));
  });

  it('an RFC 5965 complaint denylists the address; the log keeps its status', async () => {
    const file = 'arf-01.eml';
    const email = await recipientOf(file);
    const { logId } = await sentLog(email);
    expect(await send(port, verp(logId), readCorpus(file, verp(logId)))).toMatchObject({ accepted: true });
    expect(await getAddress(herald.store, email)).toMatchObject({ state: 'denylisted', reason: 'complaint' });
    const log = await herald.store.db
      .selectFrom('delivery_logs')
      .select('status')
      .where('id', '=', logId)
      .executeTakeFirstOrThrow();
    expect(log.status).toBe('sent');
  });

  // RFC 6430 not-spam is the recipient saying the mail is wanted, RFC 6591 auth-failure a receiver
  // reporting a failed SPF/DKIM check (a forwarder): both denylisted the recipient as a complaint.
  it('a not-spam or auth-failure feedback report is an event only, not a complaint', async () => {
    const file = 'arf-01.eml';
    for (const [type, email] of [
      ['not-spam', 'wanted@example.test'],
      ['auth-failure', 'forwarded@example.test'],
    ] as const) {
      const { logId } = await sentLog(email);
      const raw = readCorpus(file, verp(logId)).replace(
        'Feedback-Type: abuse',
        `Feedback-Type: ${type}\nOriginal-Rcpt-To: ${email}`,
      );
      const result = await send(port, verp(logId), raw);
      expect(result, type).toMatchObject({ accepted: true });
      expect(result.response, type).toContain('(feedback_only)');
      expect(await getAddress(herald.store, email), type).toMatchObject({ state: 'valid' });
      expect((await addressTimeline(herald.store, email)).map((e) => [e.source, e.state_after, e.note])).toEqual([
        ['bounce', 'valid', `feedback-type ${type}`],
      ]);
    }
  });

  // PostgreSQL stores no NUL in text: a report quoting one in its diagnostic (or a subject
  // decoding to one) failed its transaction, and the sender's every retry was answered 451.
  it('a report whose diagnostic or subject holds a NUL is applied or kept, not refused for ever', async () => {
    const email = 'nul@example.test';
    const { logId } = await sentLog(email);
    const dsn = dsnFor(verp(logId), email).replace('No such user', 'No such\u0000user');
    const applied = await send(port, verp(logId), Buffer.from(dsn, 'latin1'));
    expect(applied).toMatchObject({ accepted: true });
    expect(applied.response).toContain('(hard)');
    const [event] = await addressTimeline(herald.store, email);
    expect(event?.reply_text).toContain('No such');
    const other = await sentLog('nul-subject@example.test');
    const plain = `From: someone@example.net\r\nTo: ${verp(other.logId)}\r\nSubject: =?utf-8?q?hello=00there?=\r\n\r\nJust a note.\r\n`;
    const kept = await send(port, verp(other.logId), plain);
    expect(kept).toMatchObject({ accepted: true });
    expect(kept.response).toContain('(not_bounce)');
  });

  it('an RFC 3834 auto-reply is an event only', async () => {
    const file = 'rfc3834-03.eml';
    const email = await recipientOf(file);
    const { logId } = await sentLog(email);
    expect(await send(port, verp(logId), readCorpus(file, verp(logId)))).toMatchObject({ accepted: true });
    expect(await getAddress(herald.store, email)).toMatchObject({ state: 'valid' });
    expect((await addressTimeline(herald.store, email)).map((e) => [e.source, e.category, e.state_after])).toEqual([
      ['bounce', 'vacation', 'valid'],
    ]);
    const log = await herald.store.db
      .selectFrom('delivery_logs')
      .select('status')
      .where('id', '=', logId)
      .executeTakeFirstOrThrow();
    expect(log.status).toBe('sent');
  });

  it('X-Herald-Log-Id alone proves nothing: the report to the feedback-loop address is kept for review', async () => {
    const email = 'header-only@example.test';
    const { logId } = await sentLog(email);
    const raw = [
      'From: MAILER-DAEMON@mx.example.test',
      'To: news@brand.test',
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '--b1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.test',
      '',
      `Final-Recipient: rfc822; ${email}`,
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 <header-only@example.test>: Recipient address rejected: User unknown in local recipient table',
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      `X-Herald-Log-Id: ${logId}`,
      'Subject: Hello',
      '--b1--',
      '',
    ].join('\r\n');
    // Log ids are sequential: a forged report naming one in X-Herald-Log-Id must not be applied.
    const result = await send(port, `fbl@${bounceDomain}`, raw);
    expect(result).toMatchObject({ accepted: true });
    expect(result.response).toContain('unverified_log_id');
    const log = await herald.store.db
      .selectFrom('delivery_logs')
      .select(['status', 'failure_reason'])
      .where('id', '=', logId)
      .executeTakeFirstOrThrow();
    expect(log).toMatchObject({ status: 'sent', failure_reason: null });
    expect(await getAddress(herald.store, email)).toBeUndefined();
  });

  /** An RFC 3464 report about `recipient` (what a forger would send, naming any address). */
  const dsnAbout = (recipient: string, extraHeaders: string[] = []) =>
    [
      'From: MAILER-DAEMON@mx.example.test',
      'To: someone@brand.test',
      'Subject: Undelivered Mail Returned to Sender',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'Your message could not be delivered.',
      '--b1',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.example.test',
      '',
      `Final-Recipient: rfc822; ${recipient}`,
      'Action: failed',
      'Status: 5.1.1',
      `Diagnostic-Code: smtp; 550 5.1.1 <${recipient}>: Recipient address rejected: User unknown in local recipient table`,
      '--b1',
      'Content-Type: text/rfc822-headers',
      '',
      ...extraHeaders,
      'Subject: Hello',
      '--b1--',
      '',
    ].join('\r\n');
  const arfAbout = (recipient: string) =>
    [
      'From: fbl@isp.example.test',
      'To: someone@brand.test',
      'Subject: FW: complaint',
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=feedback-report; boundary="b2"',
      '',
      '--b2',
      'Content-Type: text/plain',
      '',
      'This is an email abuse report.',
      '--b2',
      'Content-Type: message/feedback-report',
      '',
      'Feedback-Type: abuse',
      'User-Agent: ISP-FBL/1.0',
      'Version: 1',
      `Original-Rcpt-To: ${recipient}`,
      '--b2',
      'Content-Type: text/rfc822-headers',
      '',
      'Subject: Hello',
      '--b2--',
      '',
    ].join('\r\n');
  async function logState(logId: number): Promise<string> {
    const row = await herald.store.db
      .selectFrom('delivery_logs')
      .select('status')
      .where('id', '=', logId)
      .executeTakeFirstOrThrow();
    return row.status;
  }

  it('refuses unsigned and badly signed VERP addresses at RCPT (log ids are guessable)', async () => {
    const email = `victim-unsigned-${context.dialect}@example.test`;
    const { logId } = await sentLog(email);
    const otherKeys = createVerpSigner({
      keys: [{ id: 'x', secret: 'an-attacker-guess-0123456789', createdAt: 0 }],
      graceMs: 0,
    });
    const valid = verp(logId);
    const tampered = valid.replace(/-([0-9a-f])/, (_, d: string) => `-${d === '0' ? '1' : '0'}`);
    for (const to of [`bounce+${logId}@${bounceDomain}`, otherKeys.address(logId, bounceDomain), tampered]) {
      const result = await send(port, to, dsnAbout(email));
      expect(result, to).toMatchObject({ accepted: false, code: 550 });
      expect(result.error).toContain('5.7.1');
    }
    expect(await getAddress(herald.store, email)).toBeUndefined();
    expect(await logState(logId)).toBe('sent');
  });

  it("a signed report naming another recipient than the log's is kept for review, not applied", async () => {
    const email = `victim-mismatch-${context.dialect}@example.test`;
    const { logId } = await sentLog(email);
    for (const raw of [dsnAbout('attacker@example.test'), arfAbout('attacker@example.test'), dsnAbout('')]) {
      const result = await send(port, verp(logId), raw);
      expect(result).toMatchObject({ accepted: true });
      expect(result.response).toMatch(/recipient_mismatch|no_recipient/);
    }
    expect(await getAddress(herald.store, email)).toBeUndefined();
    expect(await getAddress(herald.store, 'attacker@example.test')).toBeUndefined();
    expect(await logState(logId)).toBe('sent');
    const samples = await listInboundSamples(herald.store);
    expect(samples.some((s) => s.problem === 'recipient_mismatch' && s.detail.includes(String(logId)))).toBe(true);
    // The same report naming the log's own address (any case) is applied.
    const applied = await send(port, verp(logId), arfAbout(email.toUpperCase()));
    expect(applied.response).toContain('complaint');
    expect(await getAddress(herald.store, email)).toMatchObject({ state: 'denylisted' });
  });

  it('an unsubscribe mail to a VERP address is not applied: mail unsubscribes need the token, as /u/ does', async () => {
    const email = `victim-unsub-${context.dialect}@example.test`;
    const { logId } = await sentLog(email);
    const raw = `From: ${email}\r\nTo: ${verp(logId)}\r\nSubject: unsubscribe\r\nX-Apple-Unsubscribe: true\r\n\r\nunsubscribe\r\n`;
    const result = await send(port, verp(logId), raw);
    expect(result).toMatchObject({ accepted: true });
    expect(result.response).toContain('unverified_unsubscribe');
    expect(await getAddress(herald.store, email)).toBeUndefined();
  });

  it('postmaster@ and abuse@ of the bounce domain are accepted and kept for review, never applied', async () => {
    const email = `victim-role-${context.dialect}@example.test`;
    const { logId } = await sentLog(email);
    for (const to of [`postmaster@${bounceDomain}`, `Abuse@${bounceDomain.toUpperCase()}`]) {
      // Even a report quoting the log's own signed VERP address and its recipient.
      const result = await send(
        port,
        to,
        dsnAbout(email, [`Return-Path: <${verp(logId)}>`, `X-Herald-Log-Id: ${logId}`]),
      );
      expect(result, to).toMatchObject({ accepted: true });
      expect(result.response).toContain('for_review');
    }
    expect(await getAddress(herald.store, email)).toBeUndefined();
    expect(await logState(logId)).toBe('sent');
    const samples = await listInboundSamples(herald.store);
    expect(samples.filter((s) => s.problem === 'for_review').length).toBeGreaterThanOrEqual(1);
  });

  it('refuses to relay: any recipient but our VERP addresses gets 550 5.7.1', async () => {
    for (const to of ['victim@gmail.test', `bounce+1@other.test`, `postmaster@other.test`]) {
      const result = await send(port, to, 'Subject: relay test\r\n\r\nhello\r\n');
      expect(result.accepted, to).toBe(false);
      expect(result.code, to).toBe(550);
      expect(result.error).toContain('5.7.1');
    }
  });

  it('oversized, unknown-log and malformed messages: no crash, counted, kept as bounded samples', async () => {
    const before = await inboundCounters(herald.store);
    const big = Buffer.alloc(maxMessageBytes * 2, 'a');
    big.write('Subject: big\r\n\r\n');
    const oversized = await send(port, verp(1), big);
    expect(oversized).toMatchObject({ accepted: false, code: 552 });

    const unknown = await send(port, verp(987654321), readCorpus('lhost-postfix-04.eml', verp(987654321)));
    expect(unknown).toMatchObject({ accepted: true });
    expect(unknown.response).toContain('unknown_log');

    const nested = `Content-Type: multipart/mixed; boundary="x"\r\nSubject: Undelivered Mail\r\nFrom: MAILER-DAEMON@x.test\r\n\r\n${'--x\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n'.repeat(200)}`;
    expect(await send(port, verp(900000002), nested)).toMatchObject({ accepted: true });
    const badCharset =
      'From: someone@x.test\r\nSubject: hi\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\n\xff\xfe bonjour\r\n';
    expect(await send(port, verp(900000003), badCharset)).toMatchObject({ accepted: true });

    const noBoundary =
      'From: MAILER-DAEMON@x.test\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status\r\n\r\n--lost\r\nFinal-Recipient: rfc822; nobody@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\n';
    expect(await send(port, verp(900000004), noBoundary)).toMatchObject({ accepted: true });

    const after = await inboundCounters(herald.store);
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    expect(delta('too_large')).toBe(1);
    expect(delta('unknown_log')).toBeGreaterThanOrEqual(1);
    expect(delta('received')).toBe(5);
    // Each of the four others is counted as a problem (none is taken for a real bounce).
    expect(
      delta('unparseable') + delta('not_bounce') + delta('unknown_log') + delta('no_recipient') + delta('no_log_id'),
    ).toBe(4);

    const samples = await listInboundSamples(herald.store);
    expect(samples.filter((s) => s.problem !== 'for_review').length).toBeLessThanOrEqual(5);
    const tooLarge = samples.find((s) => s.problem === 'too_large');
    expect(tooLarge).toMatchObject({ size: expect.any(Number), truncated: 1 });
    expect(tooLarge!.size).toBeGreaterThan(maxMessageBytes);
    expect(tooLarge!.raw.length).toBeLessThanOrEqual(4_096);
    expect(
      samples
        .filter((s) => s.problem === 'unknown_log')
        .map((s) => s.detail)
        .join(' '),
    ).toContain('987654321');
  });

  it('mail to postmaster@ cannot push out the samples of real bounces: each pool keeps its newest keepSamples', async () => {
    const unknown = await send(port, verp(987654322), readCorpus('lhost-postfix-04.eml', verp(987654322)));
    expect(unknown.response).toContain('unknown_log');
    // Spam to postmaster@ (anyone may send it), one oversized; before, eight of them left no other sample.
    for (let i = 0; i < 8; i++) {
      const result = await send(port, `postmaster@${bounceDomain}`, `Subject: offer ${i}\r\n\r\nbuy now\r\n`);
      expect(result).toMatchObject({ accepted: true });
    }
    const big = Buffer.alloc(maxMessageBytes * 2, 'a');
    big.write('Subject: big\r\n\r\n');
    expect(await send(port, `postmaster@${bounceDomain}`, big)).toMatchObject({ accepted: false, code: 552 });
    const samples = await listInboundSamples(herald.store);
    expect(samples.filter((s) => s.problem === 'for_review')).toHaveLength(5);
    expect(samples.filter((s) => s.problem !== 'for_review').length).toBeLessThanOrEqual(5);
    expect(samples.filter((s) => s.problem === 'unknown_log').map((s) => s.detail)).toContainEqual(
      expect.stringContaining('987654322'),
    );
  });

  // Anyone sent one message knows one signed VERP address: each different report for it (a new
  // Message-ID or one changed byte) added a timeline row kept addressEventsDays (400), and one
  // qualification entry per new wording, 120 a minute from each client address, without end.
  it('applies at most 5 reports to one delivery log: more are counted, not stored', async () => {
    const email = 'reports@example.test';
    const { logId } = await sentLog(email);
    const before = await inboundCounters(herald.store);
    const report = (i: number, failed = false) =>
      dsnFor(verp(logId), email, {
        messageId: `<report-${i}@mx.example.net>`,
        ...(!failed && {
          action: 'delayed',
          status: '4.0.0',
          diagnostic: `451 wording number ${'x'.repeat(i)} of a reply nobody wrote a rule for`,
        }),
      });
    const responses: string[] = [];
    for (let i = 0; i < 8; i++) {
      const result = await send(port, verp(logId), report(i));
      expect(result).toMatchObject({ accepted: true });
      responses.push(result.response ?? '');
    }
    expect(responses.filter((r) => r.includes('(soft)'))).toHaveLength(5);
    expect(responses.slice(5)).toEqual(Array(3).fill(expect.stringContaining('(too_many_reports)')));
    const timeline = await addressTimeline(herald.store, email);
    expect(timeline.filter((e) => e.delivery_log_id === logId)).toHaveLength(5);
    // Delay warnings (Exim sends one a day) do not keep the final failure from failing the log, once.
    expect((await send(port, verp(logId), report(8, true))).response).toContain('(hard)');
    expect(await getAddress(herald.store, email)).toMatchObject({ state: 'quarantined', reason: 'user_unknown' });
    expect((await send(port, verp(logId), report(9, true))).response).toContain('(too_many_reports)');
    const after = await inboundCounters(herald.store);
    expect((after.too_many_reports ?? 0) - (before.too_many_reports ?? 0)).toBe(4);
  });
});
