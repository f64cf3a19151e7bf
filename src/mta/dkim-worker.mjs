// Worker thread of dkim-workers.ts: holds the parsed private keys and signs prepared DKIM data.
// Plain JavaScript on purpose: it needs only node:crypto, and runs without a TypeScript loader.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

const keys = workerData.pems.map((pem) => createPrivateKey(pem));

parentPort.on('message', (batch) => {
  const results = batch.map((job) => {
    const key = keys[job.key];
    if (job.algorithm === 'rsa-sha256') return sign('sha256', Buffer.from(job.data, 'utf8'), key).toString('base64');
    // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
    return sign(null, createHash('sha256').update(job.data, 'utf8').digest(), key).toString('base64');
  });
  parentPort.postMessage(results);
});
