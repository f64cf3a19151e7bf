import { Worker } from 'node:worker_threads';
import type { DkimKey } from './dkim.ts';
import type { DkimSigner } from './dkim-signer.ts';

// DKIM signing in worker threads: the main thread hands over the message's headers and body,
// a worker computes its signatures (body hash, canonicalization and the private-key operation: an
// RSA-2048 signature costs ~0.4 ms of CPU, an Ed25519 one ~35 µs). Each worker has at most one
// batch in flight: requests made while every worker is busy wait and leave together when one
// answers. Handing a batch to a thread costs ~15–20 µs however small it is (waking the thread), and
// the MTA prepares messages ahead of their turn (PoolJob.prepare), so batches grow with the load
// and cost no latency. Each job is a few flat strings: a string array costs ~2× more to copy.

interface Job {
  /** The header fields, joined by CRLF (a field's folded lines included). */
  headers: string;
  body: string;
  /** Indexes of the signing keys in the workers' key list. */
  keys: number[];
  nowMs: number;
}

interface Pending {
  job: Job;
  resolve(signatures: string[]): void;
  reject(error: Error): void;
}

interface WorkerSlot {
  worker: Worker;
  /** The batch sent and not answered yet. */
  batch: Pending[] | null;
}

export function createWorkerSigner(keys: Iterable<DkimKey>, workerCount: number): DkimSigner {
  const keyList = [...keys];
  const index = new Map(keyList.map((key, i) => [key, i]));
  const workerKeys = keyList.map(({ domain, selector, algorithm, pem }) => ({ domain, selector, algorithm, pem }));
  const queue: Pending[] = [];
  let flushScheduled = false;
  let failure: Error | null = null;
  const slots: WorkerSlot[] = Array.from({ length: Math.max(1, workerCount) }, () => {
    const worker = new Worker(new URL('./dkim-worker.mjs', import.meta.url), { workerData: { keys: workerKeys } });
    const slot: WorkerSlot = { worker, batch: null };
    worker.on('message', (signatures: string[][]) => {
      const batch = slot.batch ?? [];
      slot.batch = null;
      for (const [i, pending] of batch.entries()) pending.resolve(signatures[i]!);
      flush();
    });
    worker.on('error', (error) => {
      // A worker that failed signs nothing more: its batch fails, the others carry on without it.
      for (const pending of slot.batch ?? []) pending.reject(error);
      slots.splice(slots.indexOf(slot), 1);
      if (slots.length === 0) {
        failure = error;
        for (const pending of queue.splice(0)) pending.reject(error);
      }
    });
    return slot;
  });

  /** Spreads the waiting requests over the idle workers. */
  function flush(): void {
    flushScheduled = false;
    const idle = slots.filter((slot) => slot.batch === null);
    for (const [i, slot] of idle.entries()) {
      if (queue.length === 0) return;
      const batch = queue.splice(0, Math.ceil(queue.length / (idle.length - i)));
      slot.batch = batch;
      slot.worker.postMessage(batch.map((pending) => pending.job));
    }
  }

  function signInWorker(job: Job): Promise<string[]> {
    return new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      queue.push({ job, resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
  }

  return {
    async sign(headers, body, signingKeys, nowMs) {
      if (signingKeys.length === 0) return [];
      const keys = signingKeys.map((key) => {
        const at = index.get(key);
        if (at === undefined)
          throw new Error(`DKIM key for ${key.domain} (${key.selector}) was not given to the signing workers`);
        return at;
      });
      return signInWorker({ headers: headers.join('\r\n'), body, keys, nowMs });
    },
    async close() {
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    },
  };
}
