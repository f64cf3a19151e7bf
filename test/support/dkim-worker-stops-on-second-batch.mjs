// A stand-in for src/mta/dkim-worker.mjs that answers its first batch with fixed bytes per message
// ("batch 1") and stops its thread on the second, as a crashed worker would
// (src/mta/dkim-workers.test.ts).
import { parentPort } from 'node:worker_threads';

let batches = 0;
parentPort.on('message', (batch) => {
  batches++;
  if (batches === 2) process.exit(3);
  const answer = Buffer.from(`batch ${batches}`);
  const bytes = new ArrayBuffer(answer.length * batch.length);
  const ends = batch.map((_, i) => {
    answer.copy(Buffer.from(bytes), i * answer.length);
    return (i + 1) * answer.length;
  });
  parentPort.postMessage({ results: batch.map((_, i) => i), ends, bytes }, [bytes]);
});
