import type { TrackingEventKind } from '../store/tables.ts';

// The raw tracking log's writer: events are kept in memory and written in batches (by size or
// after flushIntervalMs), one transaction per batch, so the log only ever holds whole batches. The
// buffer is bounded: when a flood fills it, new events are dropped and counted — a redirect never
// waits for the database and memory never grows without limit.

export interface RawEvent {
  deliveryId: number;
  logId: number;
  kind: TrackingEventKind;
  linkIndex: number | null;
  at: number;
  flags: number;
  userAgent: string | null;
}

export interface EventLogStats {
  buffered: number;
  written: number;
  dropped: number;
  /** Events not logged because their message was over its budget (message-budget.ts). */
  overBudget: number;
  failedWrites: number;
}

export interface EventLogOptions {
  /** Writes one batch in one transaction. */
  write(batch: RawEvent[]): Promise<void>;
  maxBuffered: number;
  batchSize: number;
  flushIntervalMs: number;
  onError?(error: unknown, batchSize: number): void;
}

export interface EventLog {
  /** False when the buffer is full (the event is dropped and counted). */
  add(event: RawEvent): boolean;
  /** Counts an event left out because its message was over its budget. */
  countOverBudget(): void;
  /** Writes everything buffered now; resolves when written (or failed and put back). */
  flush(): Promise<void>;
  /** Flushes and stops the timer. */
  stop(): Promise<void>;
  stats(): EventLogStats;
}

export function createEventLog(options: EventLogOptions): EventLog {
  let buffer: RawEvent[] = [];
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> | null = null;
  let stopped = false;
  const stats = { written: 0, dropped: 0, overBudget: 0, failedWrites: 0 };

  function schedule(): void {
    if (timer || stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, options.flushIntervalMs);
    timer.unref();
  }

  async function writeOnce(): Promise<void> {
    while (buffer.length > 0) {
      const batch = buffer.slice(0, options.batchSize);
      buffer = buffer.slice(batch.length);
      try {
        await options.write(batch);
        stats.written += batch.length;
      } catch (error) {
        stats.failedWrites++;
        options.onError?.(error, batch.length);
        // Put the batch back in front, as far as room allows; what does not fit is dropped and counted.
        const room = Math.max(0, options.maxBuffered - buffer.length);
        const kept = batch.slice(0, room);
        stats.dropped += batch.length - kept.length;
        buffer = kept.concat(buffer);
        schedule();
        return;
      }
    }
  }

  function flush(): Promise<void> {
    if (writing) return writing.then(() => (buffer.length > 0 ? flush() : undefined));
    if (buffer.length === 0) return Promise.resolve();
    writing = writeOnce().finally(() => {
      writing = null;
    });
    return writing;
  }

  return {
    add(event) {
      if (buffer.length >= options.maxBuffered) {
        stats.dropped++;
        return false;
      }
      buffer.push(event);
      if (buffer.length >= options.batchSize && !writing) void flush();
      else schedule();
      return true;
    },
    countOverBudget() {
      stats.overBudget++;
    },
    flush,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await flush();
    },
    stats: () => ({ buffered: buffer.length, ...stats }),
  };
}
