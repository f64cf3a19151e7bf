import { describeError } from '../common/errors.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import type { Store } from '../store/database.ts';
import { recordUnmatchedReplies, type UnmatchedReply } from './qualification-store.ts';
import { replyShape } from './qualification-normalize.ts';

// Replies no rule matched are counted in memory by shape and written in one batch every
// `flushMs` (never a database write per message on the MTA's hot path). At most `maxShapes`
// distinct shapes are held; reaching it triggers an early flush.

export interface QualificationRecorder {
  add(reply: {
    source: 'smtp' | 'bounce';
    code: number | null;
    enhancedStatus: string | null;
    text: string;
    logId: number | null;
    at: number;
  }): void;
  /** Writes what is held; resolves when written (errors are logged, the batch kept for the next flush). */
  flush(): Promise<void>;
  /** Stops the timer and flushes. */
  close(): Promise<void>;
}

export interface QualificationRecorderOptions {
  store: Store;
  now: () => number;
  flushMs: number;
  maxShapes?: number;
  logger?: Logger;
}

export function createQualificationRecorder(options: QualificationRecorderOptions): QualificationRecorder {
  const logger = options.logger ?? silentLogger;
  const maxShapes = options.maxShapes ?? 10_000;
  let held = new Map<string, UnmatchedReply>();
  let writing: Promise<void> = Promise.resolve();

  const flush = (): Promise<void> => {
    writing = writing.then(async () => {
      if (held.size === 0) return;
      const batch = held;
      held = new Map();
      try {
        await recordUnmatchedReplies(options.store, [...batch.values()], options.now());
      } catch (error) {
        logger.error(
          { err: describeError(error), shapes: batch.size },
          'writing the qualification table failed; kept for the next flush',
        );
        for (const [signature, entry] of batch) merge(signature, entry);
      }
    });
    return writing;
  };

  function merge(signature: string, entry: UnmatchedReply): void {
    const known = held.get(signature);
    if (!known) {
      if (held.size >= maxShapes) return;
      held.set(signature, entry);
      return;
    }
    known.count += entry.count;
    known.firstSeenAt = Math.min(known.firstSeenAt, entry.firstSeenAt);
    known.lastSeenAt = Math.max(known.lastSeenAt, entry.lastSeenAt);
  }

  const timer = setInterval(() => void flush(), options.flushMs);
  timer.unref();

  return {
    add(reply) {
      const shape = replyShape(reply.code, reply.enhancedStatus, reply.text);
      merge(shape.signature, {
        signature: shape.signature,
        source: reply.source,
        code: reply.code,
        enhancedStatus: reply.enhancedStatus,
        pattern: shape.pattern,
        example: reply.text,
        exampleLogId: reply.logId,
        count: 1,
        firstSeenAt: reply.at,
        lastSeenAt: reply.at,
      });
      if (held.size >= maxShapes) void flush();
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
