// Worker thread of bench/cleanup.ts: a live delivery's writes (one insert and one update per
// transaction, every 2 ms) while the cleanup runs, recording each write's latency.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 5000');
const insert = db.prepare(
  "insert into delivery_logs (delivery_id, recipient_id, email, domain, data, status, attempts, next_attempt_at, updated_at) values (?, null, ?, 'example.test', '{}', 'pending', 0, ?, ?)",
);
const update = db.prepare("update delivery_logs set status = 'sent', attempts = 1, updated_at = ? where id = ?");
const write = db.transaction((i) => {
  const now = Date.now();
  const { lastInsertRowid } = insert.run(workerData.deliveryId, `live${i}@example.test`, now, now);
  update.run(now, lastInsertRowid);
});
let stop = false;
parentPort.on('message', () => {
  stop = true;
});
const latencies = [];
let i = 0;
const loop = () => {
  if (stop) {
    latencies.sort((a, b) => a - b);
    parentPort.postMessage({
      writes: latencies.length,
      max: latencies.at(-1) ?? 0,
      p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0,
      p50: latencies[Math.floor(latencies.length / 2)] ?? 0,
    });
    db.close();
    return;
  }
  const start = process.hrtime.bigint();
  write(i++);
  latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
  setTimeout(loop, 2);
};
loop();
