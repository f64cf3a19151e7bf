// Bounce qualification throughput: classifyReply over real replies, and parse + classify over
// the shared corpus of bounce mails. Prints figures; never passes or fails on time.
// Usage: node --import tsx bench/classify.ts [seconds per phase, default 3]
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { classifyBounce } from '../src/bounce/classify-bounce.ts';
import { compileBounceRules } from '../src/bounce/classifier.ts';
import { parseBounceMessage } from '../src/bounce/parse-bounce.ts';
import { loadBouncePack } from '../src/bounce/rule-pack.ts';
import type { SmtpReply } from '../src/bounce/smtp-reply.ts';
import { bounceCorpusDir } from '../test/support/corpus.ts';

const seconds = Number(process.argv[2] ?? 3);
const corpus = bounceCorpusDir;
const classifier = compileBounceRules(await loadBouncePack());
// Every reply classified from scratch: the figure to compare with earlier versions of the pack.
const uncached = compileBounceRules(await loadBouncePack(), { cacheSize: 0 });
const mails = readdirSync(corpus)
  .filter((f) => f.endsWith('.eml'))
  .map((f) => readFileSync(resolve(corpus, f)));

// The reply mix: every diagnostic the corpus carries (real replies from many MTAs and providers).
const replies: SmtpReply[] = [];
for (const mail of mails) {
  for (const r of (await parseBounceMessage(mail)).recipients) {
    if (r.diagnostic)
      replies.push({
        code: r.replyCode ?? null,
        enhanced: null,
        text: r.diagnostic,
        ...(r.phase && { phase: r.phase }),
        ...(r.remoteMta && { mxHost: r.remoteMta }),
      });
  }
}

function rate(run: () => number): { perSecond: number; perCpuSecond: number; count: number } {
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  let count = 0;
  while (performance.now() < end) count += run();
  const cpu = process.cpuUsage(cpuStart);
  return {
    perSecond: count / ((performance.now() - start) / 1000),
    perCpuSecond: count / ((cpu.user + cpu.system) / 1e6),
    count,
  };
}

const replyRate = rate(() => {
  for (const reply of replies) uncached.classifyReply(reply);
  return replies.length;
});
// The same replies heard again (a send hears one provider's reply for many recipients): the
// verdict cache answers.
const cachedRate = rate(() => {
  for (const reply of replies) classifier.classifyReply(reply);
  return replies.length;
});
let mailCount = 0;
const mailStart = performance.now();
// CPU time as well as wall time: on a shared machine the wall-clock rate follows the load.
const cpuStart = process.cpuUsage();
while (performance.now() - mailStart < seconds * 1000) {
  for (const mail of mails) classifyBounce(await parseBounceMessage(mail), uncached);
  mailCount += mails.length;
}
const mailRate = mailCount / ((performance.now() - mailStart) / 1000);
const cpu = process.cpuUsage(cpuStart);
const mailCpuRate = mailCount / ((cpu.user + cpu.system) / 1e6);
const avgBytes = mails.reduce((n, m) => n + m.length, 0) / mails.length;

console.log(
  `classifyReply: ${Math.round(replyRate.perSecond).toLocaleString('en')} replies/s (${Math.round(replyRate.perCpuSecond).toLocaleString('en')} per CPU-second; ${replies.length} distinct real replies, ${classifier.version}, ${(await loadBouncePack()).rules.length} rules)`,
);
console.log(
  `classifyReply, replies heard again (verdict cache): ${Math.round(cachedRate.perSecond).toLocaleString('en')} replies/s (${Math.round(cachedRate.perCpuSecond).toLocaleString('en')} per CPU-second)`,
);
console.log(
  `parse + classify: ${Math.round(mailRate).toLocaleString('en')} bounce mails/s (${Math.round(mailCpuRate).toLocaleString('en')} per CPU-second; ${mails.length} corpus mails, avg ${Math.round(avgBytes)} bytes)`,
);
console.log(
  `peak RSS: ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB (load average ${loadavg()[0]!.toFixed(2)})`,
);
