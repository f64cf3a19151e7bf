// How many raw events one message may add to the log. Every token of a message (its links, pixel,
// mirror page) names the same delivery log, and anyone holding one can replay it as fast as the
// network allows: one recipient's pixel fetched 86,000 times in 5 s wrote 86,000 rows (and as many
// webhook outbox rows), all unflagged. A token bucket per log: a scanner following every link of a
// message at once still fits in the burst, a replay loop gets one event a second. Over budget, the
// request is answered as usual and the event is only counted. Pure: time is passed in.

export interface MessageBudgetOptions {
  /** Events one message may log at once (the bucket's size). */
  burst: number;
  /** Events a message earns back per second. */
  perSecond: number;
  /** Messages tracked at once; the least recently seen leaves first (its budget starts afresh). */
  maxMessages: number;
}

export interface MessageBudget {
  /** Takes one event from this log's budget; false when it has none left (the event is not logged). */
  take(logId: number, nowMs: number): boolean;
}

export function createMessageBudget(options: MessageBudgetOptions): MessageBudget {
  const buckets = new Map<number, { tokens: number; at: number }>();
  return {
    take(logId, nowMs) {
      let bucket = buckets.get(logId);
      if (bucket) {
        buckets.delete(logId);
        const earned = (Math.max(0, nowMs - bucket.at) / 1_000) * options.perSecond;
        bucket.tokens = Math.min(options.burst, bucket.tokens + earned);
        bucket.at = nowMs;
      } else {
        if (buckets.size >= options.maxMessages) buckets.delete(buckets.keys().next().value!);
        bucket = { tokens: options.burst, at: nowMs };
      }
      buckets.set(logId, bucket);
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    },
  };
}
