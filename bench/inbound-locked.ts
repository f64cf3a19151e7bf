// What SMTP clients of the inbound role see while another process holds the SQLite write lock (a
// `herald db maintain`, an import, a script): three bounces sent at once, and the role's event loop
// delay meanwhile (better-sqlite3 is synchronous: a wait inside SQLite stops every session). Then the
// lock is released and the bounce is sent again: it must be accepted and fail its delivery log.
// Run: node --import tsx bench/inbound-locked.ts
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { createInboundRole } from '../src/bounce/inbound-role.ts';
import { parseBounceMessage } from '../src/bounce/parse-bounce.ts';
import { loadVerpSigner } from '../src/bounce/verp-keys.ts';
import { silentLogger } from '../src/common/logger.ts';
import { parseConfig } from '../src/config/load.ts';
import { openHerald } from '../src/main.ts';
import { seedDelivery } from '../src/mta/testing/seed-delivery.ts';
import { bounceCorpusDir } from '../test/support/corpus.ts';
import { createScratchDatabase } from '../test/support/scratch-database.ts';
import { holdSqliteWriteLock } from '../test/support/sqlite-lock-holder.ts';

const bounceDomain = 'bounces.brand.test';
const database = await createScratchDatabase('sqlite', 'bench_inbound_locked');
const herald = await openHerald({
  config: parseConfig(
    {
      database: { url: database.url },
      mta: { bounceDomain },
      inbound: { port: 0 },
      bounce: { siteRulesFile: '/nonexistent/site.yaml' },
    },
    'bench',
  ),
  logger: silentLogger,
});
const role = createInboundRole(herald);
try {
  await role.start();
  const port = role.address()!.port;
  const signer = await loadVerpSigner(herald.store, herald.config, Date.now());
  const file = `${bounceCorpusDir}/lhost-postfix-04.eml`;
  const email = (await parseBounceMessage(readFileSync(file))).recipients[0]!.recipient;
  const { logIds } = await seedDelivery(herald.store.db, { now: Date.now(), recipients: [{ email }] });
  const logId = logIds[0]!;
  await herald.store.db
    .updateTable('delivery_logs')
    .set({ status: 'sent', attempts: 1, sent_at: Date.now() })
    .where('id', '=', logId)
    .execute();
  const verp = signer.address(logId, bounceDomain);
  const raw = readFileSync(file, 'latin1').replace(/^To:.*$/m, `To: ${verp}`);
  const send = () =>
    new Promise<{ ms: number; reply: string }>((resolve) => {
      const started = performance.now();
      const done = (reply: string) => resolve({ ms: Math.round(performance.now() - started), reply });
      const connection = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true, socketTimeout: 60_000 });
      connection.once('error', (error) => done(String(error)));
      connection.connect(() =>
        connection.send({ from: '', to: [verp] }, raw, (error, info) => {
          connection.close();
          done(error ? error.message : info.response);
        }),
      );
    });

  const lock = await holdSqliteWriteLock(database.url.slice('sqlite:'.length));
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const whileLocked = await Promise.all([send(), send(), send()]);
  delay.disable();
  await lock.release();
  const afterRelease = await send();
  const log = await herald.store.db
    .selectFrom('delivery_logs')
    .select('status')
    .where('id', '=', logId)
    .executeTakeFirstOrThrow();
  const result = {
    bench: 'inbound-locked',
    whileLocked,
    eventLoopMaxDelayMs: Math.round(delay.max / 1e6),
    afterRelease,
    logStatus: log.status,
  };
  for (const answer of whileLocked) console.log(`while locked: ${answer.ms} ms, ${answer.reply}`);
  console.log(`event loop max delay while locked: ${result.eventLoopMaxDelayMs} ms`);
  console.log(`after release: ${afterRelease.ms} ms, ${afterRelease.reply}; delivery log ${log.status}`);
  console.log(JSON.stringify(result));
} finally {
  await role.stop();
  await herald.close();
  await database.drop();
}
