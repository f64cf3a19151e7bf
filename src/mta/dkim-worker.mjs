// Worker thread of dkim-workers.ts: holds the parsed private keys; each message from the main
// thread is a batch of messages to build, sign and encode, whose SMTP DATA bytes go back, all of a
// batch's in one buffer handed over without a copy.
// Plain JavaScript on purpose: it runs without a TypeScript loader, in production and under vitest.
import { createPrivateKey } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { signMessage } from './dkim-core.mjs';
import { createMessageBuilder, serializeMessage } from './message-builder.mjs';
import { smtpDataOf } from './smtp-transparency.mjs';

const keys = workerData.keys.map(({ pem, ...key }) => ({ ...key, privateKey: createPrivateKey(pem) }));
const builder = createMessageBuilder();

/** A job's result: the index in `messages` of its SMTP DATA. */
function run(job, messages) {
  const signingKeys = job.keys.map((index) => keys[index]);
  const built = builder.build(job.message);
  // Tracking headers (List-Unsubscribe, RFC 8058) go in before signing, which covers them.
  built.headers.push(...job.extraHeaders);
  const signatures = signMessage(built.headers, built.body, signingKeys, job.nowMs);
  messages.push(smtpDataOf(serializeMessage([...signatures, ...built.headers], built.body)));
  return messages.length - 1;
}

parentPort.on('message', (batch) => {
  const results = [];
  const messages = [];
  for (const job of batch) {
    try {
      results.push(run(job, messages));
    } catch (error) {
      // One job's failure is its own: the worker and the rest of the batch carry on.
      results.push({ error: error instanceof Error ? error.message : String(error) });
    }
  }
  let size = 0;
  for (const data of messages) size += Buffer.byteLength(data);
  const bytes = new ArrayBuffer(size);
  const view = Buffer.from(bytes);
  const ends = [];
  let at = 0;
  for (const data of messages) {
    at += view.write(data, at);
    ends.push(at);
  }
  parentPort.postMessage({ results, ends, bytes }, [bytes]);
});
