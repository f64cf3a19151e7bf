// Summarises a V8 CPU profile of the send path (docs/performance.md): time per stage of a message
// (claim, render, MIME, DKIM, SMTP, outcome write, …) and the top frames by self time.
//   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx bench/send.ts --messages 30000
//   node --import tsx scripts/profile-summary.ts /tmp/prof/CPU.….cpuprofile --messages 30000 [--top 15]
// A sample belongs to the innermost frame on its stack that names a stage (so a database driver or
// a Node stream frame counts for the stage that called it); samples with no such frame are "other".
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Innermost match wins; files or functions, in the order a message meets them. */
const stages: Array<{ stage: string; test: (frame: ProfileNode['callFrame']) => boolean }> = [
  {
    stage: 'database (SQLite statements: claims, outcome writes, seeding)',
    test: (f) => /sqlite-driver|better-sqlite3/.test(f.url),
  },
  { stage: 'startup (module loading)', test: (f) => /node:internal\/modules|\/tsx\//.test(f.url) },
  { stage: 'claim', test: (f) => /claimDue|claimRows|dueDeliveries/.test(f.functionName) },
  { stage: 'outcome write', test: (f) => /outcome-writer|recordOutcomes|outcomeRows/.test(f.url + f.functionName) },
  { stage: 'DKIM', test: (f) => /\/src\/mta\/dkim/.test(f.url) },
  { stage: 'MIME', test: (f) => /\/src\/mta\/(message-builder|mime-encoding|message-assembly)/.test(f.url) },
  { stage: 'render', test: (f) => /\/src\/delivery\/(fast-template|content)|liquidjs/.test(f.url) },
  { stage: 'reply parse', test: (f) => /\/src\/bounce\/|parseSmtpReply/.test(f.url + f.functionName) },
  { stage: 'SMTP', test: (f) => /\/src\/mta\/smtp-/.test(f.url) },
  {
    stage: 'scheduling (pool, dispatch, runner)',
    test: (f) => /\/src\/mta\/(connection-pool|dispatch|queue-runner|fair-share|job-queue)/.test(f.url),
  },
  { stage: 'garbage collection', test: (f) => f.functionName === '(garbage collector)' },
  { stage: 'idle', test: (f) => f.functionName === '(idle)' },
];

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const file = process.argv[2];
if (!file || file.startsWith('--')) {
  console.error('usage: scripts/profile-summary.ts FILE.cpuprofile [--messages N] [--top 15]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
const messages = Number(option('messages', '0'));
const top = Number(option('top', '15'));

const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parent = new Map<number, number>();
for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
const stageOf = new Map<number, string>();
function stageFor(id: number): string {
  const known = stageOf.get(id);
  if (known) return known;
  const node = byId.get(id)!;
  const own = stages.find((s) => s.test(node.callFrame))?.stage;
  const up = parent.get(id);
  const stage = own ?? (up === undefined ? 'other (Node internals, no stage on the stack)' : stageFor(up));
  stageOf.set(id, stage);
  return stage;
}

const stageMs = new Map<string, number>();
const selfMs = new Map<string, number>();
let totalMs = 0;
profile.samples.forEach((id, i) => {
  const ms = (profile.timeDeltas[i] ?? 0) / 1000;
  totalMs += ms;
  const stage = stageFor(id);
  stageMs.set(stage, (stageMs.get(stage) ?? 0) + ms);
  const frame = byId.get(id)!.callFrame;
  const where = frame.url ? `${frame.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${frame.lineNumber + 1}` : '';
  const key = `${frame.functionName || '(anonymous)'} ${where}`.trim();
  selfMs.set(key, (selfMs.get(key) ?? 0) + ms);
});

const busyMs = totalMs - (stageMs.get('idle') ?? 0);
console.log(`profile ${file}: ${Math.round(totalMs)} ms sampled, ${Math.round(busyMs)} ms busy`);
console.log(`\nby stage (busy time${messages ? ', µs per message' : ''}):`);
for (const [stage, ms] of [...stageMs].sort((a, b) => b[1] - a[1])) {
  if (stage === 'idle') continue;
  const perMessage = messages ? `  ${((ms * 1000) / messages).toFixed(1)} µs/msg` : '';
  console.log(
    `  ${stage.padEnd(62)} ${ms.toFixed(0).padStart(7)} ms  ${((ms / busyMs) * 100).toFixed(1).padStart(5)} %${perMessage}`,
  );
}
console.log(`\ntop ${top} frames by self time:`);
for (const [frame, ms] of [...selfMs]
  .sort((a, b) => b[1] - a[1])
  .filter(([f]) => !f.startsWith('(idle)'))
  .slice(0, top))
  console.log(`  ${ms.toFixed(0).padStart(7)} ms  ${((ms / busyMs) * 100).toFixed(1).padStart(5)} %  ${frame}`);
