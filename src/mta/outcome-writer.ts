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
  /**
   * Least time between the starts of two flushes. With better-sqlite3 a write blocks the event
   * loop, so nothing accumulates during it: without a pause every flush would carry one outcome.
   */
  minIntervalMs?: number;
  /** Timer seam: schedules the retry of a failed flush. */
  setTimer?(callback: () => void, ms: number): void;
}

export function createOutcomeWriter(options: OutcomeWriterOptions): OutcomeWriter {
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  const setTimer = options.setTimer ?? ((callback, ms) => void setTimeout(callback, ms));
  let buffer: Outcome[] = [];
  let writing: Outcome[] = [];
  let running = false;
  let waiters: Array<{ until: number; resolve: () => void }> = [];
  let added = 0;
  let written = 0;
  let lastStart = -Infinity;
  let scheduled = false;
  const minIntervalMs = options.minIntervalMs ?? 0;

  function schedule(): void {
    if (running || scheduled) return;
    scheduled = true;
    const wait = lastStart + minIntervalMs - performance.now();
    const go = () => {
      scheduled = false;
      void run();
    };
    if (wait > 0) setTimer(go, wait);
    else setImmediate(go);
  }

  function settleWaiters(): void {
    const ready = waiters.filter((waiter) => waiter.until <= written);
    waiters = waiters.filter((waiter) => waiter.until > written);
    for (const waiter of ready) waiter.resolve();
  }

  async function run(): Promise<void> {
    if (running) return;
    running = true;
    while (buffer.length > 0) {
      if (performance.now() - lastStart < minIntervalMs) {
        running = false;
        schedule();
        return;
      }
      lastStart = performance.now();
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
        scheduled = true;
        setTimer(() => {
          scheduled = false;
          void run();
        }, retryDelayMs);
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
      schedule();
    },
    flush() {
      if (written >= added) return Promise.resolve();
      return new Promise((resolve) => {
        waiters.push({ until: added, resolve });
        schedule();
      });
    },
    get pending() {
      return buffer.length + writing.length;
    },
  };
}
