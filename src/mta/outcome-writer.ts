import type { Outcome } from './outcome.ts';

// Group commit: outcomes queue in memory and one writer flushes everything queued in a single
// transaction, starting the next flush as soon as the previous one finished. Under load batches
// grow by themselves; when quiet, an outcome is written within one statement's latency. That
// keeps the window in which a kill -9 forgets a finished SMTP transaction to milliseconds.

export interface OutcomeWriter {
  add(outcome: Outcome): void;
  /** Resolves once every outcome added before the call is written. */
  flush(): Promise<void>;
  /** Outcomes added and not yet written. */
  readonly pending: number;
}

export interface OutcomeWriterOptions {
  write(outcomes: readonly Outcome[]): Promise<void>;
  /** Called after each successful flush, with what it wrote. */
  onWritten?(outcomes: readonly Outcome[]): void;
  /** A failed flush keeps its outcomes and is retried after `retryDelayMs`; never dropped. */
  onError(error: unknown, retryInMs: number): void;
  retryDelayMs?: number;
  /** Timer seam: schedules the retry of a failed flush. */
  setTimer?(callback: () => void, ms: number): void;
}

export function createOutcomeWriter(options: OutcomeWriterOptions): OutcomeWriter {
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const setTimer = options.setTimer ?? ((callback, ms) => setTimeout(callback, ms).unref());
  let buffer: Outcome[] = [];
  let writing: Outcome[] = [];
  let running = false;
  let waiters: Array<{ until: number; resolve: () => void }> = [];
  let added = 0;
  let written = 0;

  function settleWaiters(): void {
    const ready = waiters.filter((waiter) => waiter.until <= written);
    waiters = waiters.filter((waiter) => waiter.until > written);
    for (const waiter of ready) waiter.resolve();
  }

  async function run(): Promise<void> {
    if (running) return;
    running = true;
    while (buffer.length > 0) {
      writing = buffer;
      buffer = [];
      try {
        await options.write(writing);
      } catch (error) {
        // Keep order: the failed batch goes back in front of what arrived meanwhile.
        buffer = writing.concat(buffer);
        writing = [];
        running = false;
        options.onError(error, retryDelayMs);
        setTimer(() => void run(), retryDelayMs);
        return;
      }
      const done = writing;
      writing = [];
      written += done.length;
      options.onWritten?.(done);
      settleWaiters();
    }
    running = false;
  }

  return {
    add(outcome) {
      buffer.push(outcome);
      added++;
      if (!running) queueMicrotask(() => void run());
    },
    flush() {
      if (written >= added) return Promise.resolve();
      return new Promise((resolve) => {
        waiters.push({ until: added, resolve });
        if (!running) void run();
      });
    },
    get pending() {
      return buffer.length + writing.length;
    },
  };
}
