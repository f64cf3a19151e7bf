import { Cron } from 'croner';
import { AppError } from '../common/errors.ts';

// Pure schedule arithmetic: "which slot is due now, and how many were missed", with time passed in.
// croner computes the slots (time-zone aware, so "04:00 Europe/Paris" follows DST); it never starts
// a timer here because no callback is given.

export interface Schedule {
  expression: string;
  timezone: string;
  /** The first slot strictly after `at`, or undefined when the expression has no more slots. */
  nextAfter(at: number): number | undefined;
}

export function compileSchedule(expression: string, timezone: string, where: string): Schedule {
  let cron: Cron;
  try {
    cron = new Cron(expression, { timezone });
    cron.nextRun(new Date(0));
  } catch (cause) {
    throw new AppError(
      'CONFIG_INVALID',
      `${where}: invalid schedule "${expression}" in time zone ${timezone}: ${(cause as Error).message}`,
      { cause },
    );
  }
  return {
    expression,
    timezone,
    nextAfter(at) {
      const next = cron.nextRun(new Date(at));
      return next ? next.getTime() : undefined;
    },
  };
}

export interface DueSlot {
  /** The latest slot at or before now: the one the run is recorded for. */
  slot: number;
  /** How many slots passed since the last handled one (1 when on time); they are caught up by one run. */
  missed: number;
}

// Counting stops here; past it the count is reported as this many (a minutely job down for a week).
const maxCountedSlots = 1_000;

export function findDueSlot(schedule: Schedule, lastHandledAt: number, now: number): DueSlot | undefined {
  const first = schedule.nextAfter(lastHandledAt);
  if (first === undefined || first > now) return undefined;
  let slot = first;
  let missed = 1;
  for (;;) {
    const next = schedule.nextAfter(slot);
    if (next === undefined || next > now) return { slot, missed };
    if (missed >= maxCountedSlots) return { slot: latestSlotBefore(schedule, slot, now), missed };
    slot = next;
    missed += 1;
  }
}

function latestSlotBefore(schedule: Schedule, from: number, now: number): number {
  // Halve the distance to now until the next slot passes it: O(log) croner calls instead of O(slots).
  let low = from;
  let step = now - from;
  while (step >= 1_000) {
    const probe = schedule.nextAfter(low + step - 1);
    if (probe !== undefined && probe <= now) low = probe;
    else step = Math.floor(step / 2);
  }
  return low;
}

/** The longest gap between consecutive slots over the next `sample` slots: "its period" for overdue checks. */
export function schedulePeriod(schedule: Schedule, from: number, sample = 8): number {
  let previous = schedule.nextAfter(from);
  if (previous === undefined) return Number.POSITIVE_INFINITY;
  let longest = 0;
  for (let i = 0; i < sample; i += 1) {
    const next = schedule.nextAfter(previous);
    if (next === undefined) break;
    longest = Math.max(longest, next - previous);
    previous = next;
  }
  return longest || Number.POSITIVE_INFINITY;
}
