import { Worker } from 'node:worker_threads';
import type { DkimKey } from './dkim.ts';
import type { MessageInput } from './message-builder.mjs';

// DKIM signing in worker threads. For the MTA, a worker does everything after personalization:
// it builds the message (MIME), signs it (body hash, canonicalization and the private-key
// operation: an RSA-2048 signature costs ~0.4 ms of CPU, an Ed25519 one ~30 µs) and encodes it as
// SMTP DATA bytes, which come back in one buffer per batch, handed over without a copy: the main
// thread only writes them to the socket.
// Each worker has at most one batch in flight: requests made while every worker is busy wait and
// leave together when one answers. Handing a batch to a thread costs ~15–20 µs however small it is
// (waking the thread), and the MTA prepares messages ahead of their turn (PoolJob.prepare), so
// batches grow with the load and cost no latency.

interface Job {
  message: MessageInput;
  extraHeaders: readonly string[];
  /** Indexes of the signing keys in the workers' key list. */
  keys: number[];
  nowMs: number;
}

/** A job's result: the index of its message in the batch's bytes, or its failure. */
type Result = number | { error: string };

interface Reply {
  results: Result[];
  /** Where each message of the batch ends in `bytes`. */
  ends: number[];
  bytes: ArrayBuffer;
}

interface Pending {
  job: Job;
  resolve(data: Buffer): void;
  reject(error: Error): void;
}

interface WorkerSlot {
  worker: Worker;
  /** The batch sent and not answered yet. */
  batch: Pending[] | null;
  /** Whether the worker has answered a batch: it started and works. */
  answered: boolean;
}

export interface SigningWorkers {
  /** Whether a worker is left: when none is (every one failed to start), sign elsewhere. */
  readonly available: boolean;
  /**
   * The message built, signed and encoded in a worker: its SMTP DATA bytes (dot-stuffed, ending in
   * CRLF "." CRLF, as smtpDataOf makes them), `extraHeaders` added before signing.
   */
  signedMessageData(
    message: MessageInput,
    extraHeaders: readonly string[],
    keys: readonly DkimKey[],
    nowMs: number,
  ): Promise<Buffer>;
  close(): Promise<void>;
}

/** `workerFile`: the worker's module (a test gives one that fails on purpose). */
export function createWorkerSigner(
  keys: Iterable<DkimKey>,
  workerCount: number,
  workerFile: URL = new URL('./dkim-worker.mjs', import.meta.url),
): SigningWorkers {
  const keyList = [...keys];
  const index = new Map(keyList.map((key, i) => [key, i]));
  const workerKeys = keyList.map(({ domain, selector, algorithm, pem }) => ({ domain, selector, algorithm, pem }));
  const queue: Pending[] = [];
  let flushScheduled = false;
  let failure: Error | null = null;
  let closing = false;
  const slots: WorkerSlot[] = Array.from({ length: Math.max(1, workerCount) }, startWorker);

  function startWorker(): WorkerSlot {
    const worker = new Worker(workerFile, { workerData: { keys: workerKeys } });
    const slot: WorkerSlot = { worker, batch: null, answered: false };
    worker.on('message', ({ results, ends, bytes }: Reply) => {
      const batch = slot.batch ?? [];
      slot.batch = null;
      slot.answered = true;
      for (const [i, pending] of batch.entries()) {
        const result = results[i]!;
        if (typeof result === 'object') pending.reject(new Error(`DKIM signing worker: ${result.error}`));
        else {
          const start = result === 0 ? 0 : ends[result - 1]!;
          pending.resolve(Buffer.from(bytes, start, ends[result]! - start));
        }
      }
      flush();
    });
    worker.on('error', (error) => ended(slot, error));
    worker.on('exit', (code) => ended(slot, new Error(`DKIM signing worker stopped (exit code ${code})`)));
    return slot;
  }

  /**
   * A worker that failed or stopped: its batch fails (the MTA hands those messages back). One that
   * had worked is replaced, so a crash does not leave the MTA without signers until a restart; one
   * that never answered is not (its start would fail again), and the others carry on without it.
   */
  function ended(slot: WorkerSlot, error: Error): void {
    const at = slots.indexOf(slot);
    // 'exit' follows 'error' for the same worker: the first one handled it.
    if (at < 0 || closing) return;
    for (const pending of slot.batch ?? []) pending.reject(error);
    slot.batch = null;
    if (slot.answered) {
      slots[at] = startWorker();
      flush();
      return;
    }
    slots.splice(at, 1);
    if (slots.length === 0) {
      failure = error;
      for (const pending of queue.splice(0)) pending.reject(error);
    }
  }

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

  function inWorker(job: Job): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (failure) return reject(failure);
      queue.push({ job, resolve, reject });
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    });
  }

  function keyIndexes(signingKeys: readonly DkimKey[]): number[] {
    return signingKeys.map((key) => {
      const at = index.get(key);
      if (at === undefined)
        throw new Error(`DKIM key for ${key.domain} (${key.selector}) was not given to the signing workers`);
      return at;
    });
  }

  return {
    get available() {
      return slots.length > 0;
    },
    async signedMessageData(message, extraHeaders, signingKeys, nowMs) {
      return inWorker({ message, extraHeaders, keys: keyIndexes(signingKeys), nowMs });
    },
    async close() {
      closing = true;
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    },
  };
}
