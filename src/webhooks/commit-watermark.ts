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

export interface CommitWatermark {
  /** The highest outbox id the dispatcher may send now (no smaller one can still appear). */
  advance(): Promise<number>;
}

export function createCommitWatermark(store: Store): CommitWatermark {
  if (store.dialect === 'sqlite') return { advance: async () => Number.MAX_SAFE_INTEGER };
  const pending: OutboxMark[] = [];
  let finalThrough = 0;
  return {
    async advance() {
      const mark = await readOutboxMark(store);
      if (pending.length < maxPendingMarks) pending.push(mark);
      else pending[pending.length - 1] = mark;
      const running = new Set(mark.running);
      // Oldest first: a transaction still running that an older mark waits for was running when
      // every newer mark was read as well. The newest is final at once when nothing is running.
      while (pending[0] && !pending[0].running.some((xid) => running.has(xid)))
        finalThrough = Math.max(finalThrough, pending.shift()!.lastId);
      return finalThrough;
    },
  };
}
