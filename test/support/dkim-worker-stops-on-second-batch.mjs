// A stand-in for src/mta/dkim-worker.mjs that answers its first batch with a fixed signature line
// and stops its thread on the second, as a crashed worker would (src/mta/dkim-workers.test.ts).
import { parentPort } from 'node:worker_threads';

let batches = 0;
parentPort.on('message', (batch) => {
  batches++;
  if (batches === 2) process.exit(3);
  parentPort.postMessage({ results: batch.map(() => [`X-Batch: ${batches}`]), ends: [], bytes: new ArrayBuffer(0) });
});
