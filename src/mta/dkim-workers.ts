import { Worker } from 'node:worker_threads';
import { bodyHash, prepareDkim, type DkimKey } from './dkim.ts';
import type { DkimSigner } from './dkim-signer.ts';

// DKIM signing in worker threads: the main thread canonicalizes and hashes (cheap), workers do
// the private-key operation (an RSA-2048 signature costs ~0.4 ms of CPU). Requests made in the
// same event-loop turn travel together as one message per worker.

interface Pending {
  data: string;
  key: number;
  algorithm: DkimKey['algorithm'];
  resolve(signature: string): void;
  reject(error: Error): void;
}

interface WorkerSlot {
  worker: Worker;
  /** Batches sent and not answered, oldest first; a worker answers in order. */
  inFlight: Pending[][];
  outstanding: number;
}

export function createWorkerSigner(keys: Iterable<DkimKey>, workerCount: number): DkimSigner {
  const keyList = [...keys];
  const index = new Map(keyList.map((key, i) => [key, i]));
  const pems = keyList.map((key) => key.pem);
  const slots: WorkerSlot[] = Array.from({ length: Math.max(1, workerCount) }, () => {
    const worker = new Worker(new URL('./dkim-worker.mjs', import.meta.url), { workerData: { pems } });
    const slot: WorkerSlot = { worker, inFlight: [], outstanding: 0 };
    worker.on('message', (signatures: string[]) => {
      const batch = slot.inFlight.shift();
      if (!batch) return;
      slot.outstanding -= batch.length;
      for (const [i, pending] of batch.entries()) pending.resolve(signatures[i]!);
    });
    worker.on('error', (error) => {
      for (const batch of slot.inFlight.splice(0)) for (const pending of batch) pending.reject(error);
      slot.outstanding = 0;
    });
    return slot;
  });
  let queue: Pending[] = [];
  let flushScheduled = false;

  function flush(): void {
    flushScheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    // Least busy worker first.
    const slot = slots.reduce((best, candidate) => (candidate.outstanding < best.outstanding ? candidate : best));
    slot.inFlight.push(batch);
    slot.outstanding += batch.length;
    slot.worker.postMessage(batch.map(({ data, key, algorithm }) => ({ data, key, algorithm })));
  }

  function signOne(data: string, key: DkimKey): Promise<string> {
    return new Promise((resolve, reject) => {
      queue.push({ data, key: index.get(key) ?? -1, algorithm: key.algorithm, resolve, reject });
      // Small batches spread over the workers; large ones amortize the message passing.
      if (queue.length >= 16) flush();
      else if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
  }

  return {
    async sign(headers, body, signingKeys, nowMs) {
      if (signingKeys.length === 0) return [];
      const hash = bodyHash(body);
      return Promise.all(
        signingKeys.map(async (key) => {
          if (!index.has(key))
            throw new Error(`DKIM key for ${key.domain} (${key.selector}) was not given to the signing workers`);
          const prepared = prepareDkim(headers, hash, key, nowMs);
          return prepared.headerPrefix + (await signOne(prepared.data, key));
        }),
      );
    },
    async close() {
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    },
  };
}
