// Cost of one MTA's shaping snapshot (what `herald mx stats`, /metrics, the doctor and the dashboard
// read, rebuilt every mta.statsIntervalMs on the MTA's event loop) for a list of many small company
// domains: every domain its own MX host, so its own path and (generic rule, perMxHost) rate key, one
// host in fifty answering 421 4.7.0 (a backoff on its rate key), plus one provider's host over 200
// MX IPs. Shipped MX rules, in-memory throttle. Prints the time to record the traffic, the heap it
// holds, and the time per snapshot (median and max of --snapshots, and the median CPU time).
// Run: node --expose-gc --import tsx bench/shaping-snapshot.ts [--hosts 50000] [--snapshots 5]
import { manualClock } from '../src/common/clock.ts';
import { RulesHolder } from '../src/shaping/compiled-rules.ts';
import { createMemoryThrottle } from '../src/shaping/memory-throttle.ts';
import { loadRuleFiles, shippedPackPath } from '../src/shaping/rule-loader.ts';
import { Shaper } from '../src/shaping/shaper.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] ? process.argv[at + 1]! : fallback;
}

const hosts = Number(option('hosts', '50000'));
const snapshots = Number(option('snapshots', '5'));
const loaded = await loadRuleFiles([shippedPackPath]);
if (!loaded.ok) throw new Error(`shipped MX rules do not load: ${JSON.stringify(loaded.issues)}`);
const clock = manualClock(1_000_000);
const shaper = new Shaper({
  rules: new RulesHolder(loaded.rules),
  backend: createMemoryThrottle(),
  clock,
  defaults: { connectTimeoutMs: 30_000, commandTimeoutMs: 60_000, dataTimeoutMs: 600_000, opportunisticTls: true },
  nodeId: 'bench',
});
const ok = { code: 250, enhanced: '2.0.0', text: 'ok' };
const slowDown = { code: 421, enhanced: '4.7.0', text: 'Try again later, too many messages' };

let started = performance.now();
for (let i = 0; i < hosts; i++) {
  const path = { mxHost: `mx.company${i}.example`, mxIp: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, publicId: 1 };
  shaper.recordConnection(path, 'accepted');
  await shaper.acquireMessages(path, 1);
  shaper.recordReply(path, `company${i}.example`, ok);
  if (i % 50 === 0) shaper.recordReply(path, `company${i}.example`, slowDown);
}
for (let i = 0; i < 200; i++) {
  const path = { mxHost: 'gmail-smtp-in.l.google.com', mxIp: `172.16.0.${i}`, publicId: 1 };
  shaper.recordConnection(path, 'accepted');
  await shaper.acquireMessages(path, 1);
  shaper.recordReply(path, 'gmail.com', ok);
}
const recordMs = performance.now() - started;
(globalThis as { gc?: () => void }).gc?.();
const heapMb = Math.round(process.memoryUsage().heapUsed / 1e6);

const times: number[] = [];
// CPU time of this process per snapshot: steadier than wall time on a busy machine (the snapshot runs on the event loop).
const cpuTimes: number[] = [];
let bytes = 0;
for (let i = 0; i < snapshots; i++) {
  started = performance.now();
  const cpu = process.cpuUsage();
  const snapshot = await shaper.snapshot();
  const used = process.cpuUsage(cpu);
  cpuTimes.push((used.user + used.system) / 1000);
  times.push(performance.now() - started);
  bytes = JSON.stringify(snapshot).length;
}
times.sort((a, b) => a - b);
cpuTimes.sort((a, b) => a - b);
const result = {
  bench: 'shaping-snapshot',
  hosts,
  backoffs: shaper.backoff.active(clock.now()).length,
  recordMs: Math.round(recordMs),
  heapMb,
  snapshotP50: Math.round(times[Math.floor(times.length / 2)]!),
  snapshotMax: Math.round(times[times.length - 1]!),
  snapshotCpuP50: Math.round(cpuTimes[Math.floor(cpuTimes.length / 2)]!),
  bytes,
};
console.log(
  `shaping snapshot [${hosts} MX hosts, ${result.backoffs} backoffs]: recording ${result.recordMs} ms, heap ${heapMb} MB, snapshot ${result.snapshotP50} ms median (${result.snapshotCpuP50} ms of CPU), max ${result.snapshotMax} ms (${snapshots} snapshots, ${bytes} bytes)`,
);
console.log(JSON.stringify(result));
