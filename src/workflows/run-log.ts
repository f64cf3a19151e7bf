import type { Store } from '../store/database.ts';
import type { WorkflowStepLogRow } from '../store/tables.ts';
import { appendStepLog, deleteOldestStepLogsAfter, updateStepLogMessage } from './workflow-store.ts';

// A run's log lines, capped: a step that logs per item (or a run that loops on a failure) keeps the
// first half of `maxLines` and a rolling last half, with one marker line between them saying how
// many were dropped. The marker is rewritten with every prune, so a run whose process dies still
// says so. Lines are appended one at a time, in call order, even if a step does not await log().

/** Lines pruned at once from the tail: the table holds at most maxLines + this + 1 rows of a run. */
const pruneEvery = 100;
/** A single log line longer than this is cut (a whole stack or response body in one message). */
export const maxLogMessageChars = 4_000;

export interface RunLog {
  append(stepIndex: number, level: WorkflowStepLogRow['level'], message: string): Promise<void>;
}

export function createRunLog(store: Store, runId: number, maxLines: number, now: () => number): RunLog {
  const headLimit = Math.ceil(maxLines / 2);
  const tailLimit = maxLines - headLimit;
  let headLines = 0;
  let tailLines = 0;
  let dropped = 0;
  let markerId: number | undefined;
  let queue: Promise<void> = Promise.resolve();

  const markerText = () =>
    `… ${dropped} line(s) dropped: a run keeps its first ${headLimit} and last ${tailLimit} log lines (workflows.logLinesPerRun)`;

  const write = async (stepIndex: number, level: WorkflowStepLogRow['level'], text: string): Promise<void> => {
    const message = cutLongMessage(text);
    const entry = { runId, stepIndex, level, message, at: now() };
    if (headLines < headLimit) {
      headLines += 1;
      await appendStepLog(store, entry);
      return;
    }
    if (markerId === undefined) {
      markerId = await appendStepLog(store, { ...entry, level: 'warn', message: markerText() });
    }
    await appendStepLog(store, entry);
    tailLines += 1;
    if (tailLines >= tailLimit + pruneEvery) {
      const excess = tailLines - tailLimit;
      await deleteOldestStepLogsAfter(store, runId, markerId, excess);
      tailLines -= excess;
      dropped += excess;
      await updateStepLogMessage(store, markerId, markerText());
    }
  };

  return {
    append(stepIndex, level, message) {
      const next = queue.then(() => write(stepIndex, level, message));
      queue = next.catch(() => {});
      return next;
    },
  };
}

/** The text, or its first maxLogMessageChars saying how many were cut: also a step's error (a thrown response body). */
export function cutLongMessage(text: string): string {
  if (text.length <= maxLogMessageChars) return text;
  return `${text.slice(0, maxLogMessageChars)} … (${text.length - maxLogMessageChars} more characters cut)`;
}
