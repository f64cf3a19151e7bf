// Worker thread of dkim-workers.ts: holds the parsed private keys and signs whole messages (body
// hash, canonicalized headers, private-key operation), a batch per message from the main thread.
// Plain JavaScript on purpose: it runs without a TypeScript loader, in production and under vitest.
import { createPrivateKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { signMessage } from './dkim-core.mjs';

const keys = workerData.keys.map(({ pem, ...key }) => ({ ...key, privateKey: createPrivateKey(pem) }));

parentPort.on('message', (batch) => {
  parentPort.postMessage(
    batch.map((job) =>
      signMessage(
        // The fields were joined by CRLF: a CRLF not followed by white space starts the next one.
        job.headers.split(/\r\n(?![ \t])/),
        job.body,
        job.keys.map((index) => keys[index]),
        job.nowMs,
      ),
    ),
  );
});
