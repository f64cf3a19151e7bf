import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { expect, it } from 'vitest';
import { createInboundRole } from '../src/bounce/inbound-role.ts';
import { loadVerpSigner } from '../src/bounce/verp-keys.ts';
import { runCli } from '../src/cli/main.ts';
import type { CliContext } from '../src/cli/context.ts';
import { manualClock } from '../src/common/clock.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import type { Finding } from '../src/doctor/finding.ts';
import { openHerald } from '../src/main.ts';
import { createTrackingService } from '../src/tracking/service.ts';
import { heraldOver, seedTrackedDelivery } from '../src/tracking/testing/seed-tracking.ts';
import { describeEachDialect } from './support/databases.ts';

// Complaints and unsubscribes arrive the way they do in production: feedback-loop reports (RFC 5965
// ARF) over SMTP to the inbound role, one-click unsubscribes (RFC 8058) to the tracking server. The
// doctor then compares the rates with the providers' thresholds.

const now = Date.UTC(2026, 5, 1, 12);
const bounceDomain = 'bounces.brand.test';

function arf(logId: number, recipient: string, verp: string): string {
  return [
    'From: BigMail Feedback Loop <fbl@bigmail.test>',
    `To: ${verp}`,
    'Subject: FW: Hello',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"',
    '',
    '--ARF',
    'Content-Type: text/plain',
    '',
    'This is an email abuse report for an email message received from IP 192.0.2.44.',
    '--ARF',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: BigMail-FBL/1.0',
    'Version: 1',
    'Source-IP: 192.0.2.44',
    `Original-Rcpt-To: <${recipient}>`,
    '',
    '--ARF',
    'Content-Type: message/rfc822',
    '',
    'From: news@herald.test',
    `To: ${recipient}`,
    `X-Herald-Log-Id: ${logId}`,
    'Subject: Hello',
    '',
    'Hello',
    '--ARF--',
    '',
  ].join('\r\n');
}

async function send(port: number, to: string, raw: string): Promise<void> {
  const connection = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, connectionTimeout: 5_000 });
  await new Promise<void>((resolve, reject) => {
    connection.once('error', reject);
    connection.connect(() => resolve());
  });
  try {
    await new Promise<void>((resolve, reject) =>
      connection.send({ from: '', to: [to] }, raw, (error) => (error ? reject(error) : resolve())),
    );
  } finally {
    connection.quit();
    connection.close();
  }
}

describeEachDialect('herald doctor on complaints and unsubscribes', ({ store, url }) => {
  it('compares the complaint rate with 0.1 % / 0.3 % and flags an unsubscribe spike', async () => {
    const clock = manualClock(now);
    const recipients = (tag: string) =>
      Array.from({ length: 400 }, (_, i) => ({ email: `${tag}${i}@bigmail.test`, data: { first_name: 'Pat' } }));
    const spring = await seedTrackedDelivery(store(), {
      name: 'spring',
      html: '<p>Hi</p>',
      recipients: recipients('s'),
      now,
    });
    const summer = await seedTrackedDelivery(store(), {
      name: 'summer',
      html: '<p>Hi</p>',
      recipients: recipients('u'),
      now,
    });
    // Both finished an hour ago.
    await store()
      .db.updateTable('deliveries')
      .set({ state: 'finished', finished_at: now - 3_600_000, updated_at: now - 3_600_000 })
      .where('id', 'in', [spring.deliveryId, summer.deliveryId])
      .execute();

    const herald = await openHerald({
      config: parseConfig({ database: { url: url() }, mta: { bounceDomain }, inbound: { port: 0 } }, 'test'),
      logger: silentLogger,
      clock,
    });
    const inbound = createInboundRole(herald);
    await inbound.start();
    // The Return-Path the MTA wrote on each message: signed VERP, the only addresses the inbound role accepts.
    const signer = await loadVerpSigner(herald.store, herald.config, now);
    try {
      for (const log of spring.logs.slice(0, 2)) {
        const verp = signer.address(log.id, bounceDomain);
        await send(inbound.address()!.port, verp, arf(log.id, log.email, verp));
      }
    } finally {
      await inbound.stop();
      await herald.close();
    }

    const tracking = await createTrackingService(heraldOver(store(), { tracking: { flushIntervalMs: 10 } }, clock));
    const unsubscribe = async (deliveryId: number, logId: number) => {
      const token = tracking.keyRing.sign({ kind: 'unsubscribe', deliveryId, logId, issuedAt: Math.floor(now / 1000) });
      const response = await tracking.app.inject({
        method: 'POST',
        url: `/u/${token}`,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      expect(response.statusCode).toBe(200);
    };
    try {
      for (const log of spring.logs.slice(10, 16)) await unsubscribe(spring.deliveryId, log.id);
      await unsubscribe(summer.deliveryId, summer.logs[0]!.id);
    } finally {
      await tracking.close();
    }

    const stdout: string[] = [];
    const context: CliContext = {
      output: { out: (line) => stdout.push(line), err: (line) => stdout.push(line) },
      open: () =>
        openHerald({ config: parseConfig({ database: { url: url() } }, 'test'), logger: silentLogger, clock }),
    };
    await runCli(['node', 'herald', 'doctor', '--json'], context);
    const findings = (JSON.parse(stdout.find((line) => line.startsWith('{'))!) as { findings: Finding[] }).findings;
    const health = findings.filter((f) => f.check === 'list-health');
    expect(health.map((f) => [f.subject, f.severity])).toEqual([
      [`delivery ${spring.deliveryId}`, 'critical'],
      [`delivery ${spring.deliveryId}`, 'warning'],
    ]);
    expect(health[0]!.evidence).toMatchObject({ sent: 400, complaints: 2, rate: 0.005, criticalRatio: 0.003 });
    expect(health[1]!.evidence).toMatchObject({ sent: 400, unsubscribes: 6, rate: 0.015, baselineRate: 0.0025 });
    expect(health[0]!.fix).toContain('denylisted');
  });
});
