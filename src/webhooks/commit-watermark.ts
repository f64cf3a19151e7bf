import type { Clock } from '../common/clock.ts';
import type { Logger } from '../common/logger.ts';
import type { Store } from '../store/database.ts';
import { readOutboxMark, type OutboxMark } from './webhook-store.ts';

// Up to which outbox id every event is committed (or rolled back), so none with a smaller id can
// still appear: a receiver keeps the last event id it processed (docs/webhooks.md).
// - SQLite has one writer at a time: ids are taken in commit order, every visible id is final.
// - PostgreSQL takes an id from the sequence when the event is written, not when its transaction
//   commits: two MTA nodes writing outcomes at once committed id 11 before id 10, the dispatcher sent
//   11 at once, and 10, appearing afterwards, was ignored by the receiver as already seen. A mark is
//   the last id handed out and the transactions running then (webhook-store.ts readOutboxMark):
//   once none of them is running any more, every event up to the mark is final. The cost: an event
//   waits for the write transactions of this database that were running when it was marked (one
//   pass when none is long).

/** Marks waiting for their transactions to end, at most this many (the newest replaces the last). */
const maxPendingMarks = 64;

/** Events held back this long by the same transactions: the log names them (once per mark). */
export const heldBackWarningMs = 60_000;

export interface CommitWatermark {
  /** The highest outbox id the dispatcher may send now (no smaller one can still appear). */
  advance(): Promise<number>;
}

export function createCommitWatermark(store: Store, clock: Clock, logger: Logger): CommitWatermark {
  if (store.dialect === 'sqlite') return { advance: async () => Number.MAX_SAFE_INTEGER };
  const pending: Array<OutboxMark & { markedAt: number }> = [];
  let finalThrough = 0;
  let warned: OutboxMark | undefined;
  return {
    async advance() {
      const mark = { ...(await readOutboxMark(store)), markedAt: clock.now() };
      if (pending.length < maxPendingMarks) pending.push(mark);
      else pending[pending.length - 1] = mark;
      const running = new Set(mark.running.map((transaction) => transaction.xid));
      const waitsFor = (held: OutboxMark) => held.running.filter((transaction) => running.has(transaction.xid));
      // Oldest first: a transaction still running that an older mark waits for was running when
      // every newer mark was read as well. The newest is final at once when nothing is running.
      while (pending[0] && waitsFor(pending[0]).length === 0)
        finalThrough = Math.max(finalThrough, pending.shift()!.lastId);
      // Nothing else says why no webhook leaves: a psql session left in a transaction holds them all.
      const oldest = pending[0];
      if (oldest && oldest !== warned && clock.now() - oldest.markedAt >= heldBackWarningMs) {
        warned = oldest;
        const pids = waitsFor(oldest).map((transaction) => transaction.pid);
        logger.warn(
          { pids, since: new Date(oldest.markedAt).toISOString() },
          `webhook events wait for database transactions open since before they were written (pg_stat_activity pid ${pids.join(', ')}): let them finish or end them (pg_terminate_backend)`,
        );
      }
      return finalThrough;
    },
  };
}
