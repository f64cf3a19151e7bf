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
  let first: Date | null;
  try {
    cron = new Cron(expression, { timezone });
    first = cron.nextRun(new Date(0));
  } catch (cause) {
    throw new AppError(
      'CONFIG_INVALID',
      `${where}: invalid schedule "${expression}" in time zone ${timezone}: ${(cause as Error).message}`,
      { cause },
    );
  }
  // "0 0 31 2 *" parses, but the workflow would never run and never be reported overdue.
  if (!first)
    throw new AppError('CONFIG_INVALID', `${where}: schedule "${expression}" never fires (no date matches it)`);
  const inZone = (at: number) => {
    let next = cron.nextRun(new Date(at))?.getTime();
    // Asked from inside the second occurrence of the repeated hour, croner 9 answers a slot of the
    // first one, in the past: step on from there until a slot is after `at`.
    for (let guard = 0; next !== undefined && next <= at && guard < 10_000; guard += 1)
      next = cron.nextRun(new Date(next))?.getTime();
    return next !== undefined && next > at ? next : undefined;
  };
  return {
    expression,
    timezone,
    nextAfter: hasEveryHour(expression) ? everyRealHour(expression, timezone, inZone) : inZone,
  };
}

// When DST ends, the hour before the change happens twice. croner keeps one of the two for every
// schedule, so "*/5 * * * *" in Europe/Paris went silent for an hour (it skipped 02:00-02:59 CEST).
// Like Vixie cron, a schedule with every hour runs in both, by real time; one at a fixed hour
// ("30 2 * * *") runs once, as croner does.

function hasEveryHour(expression: string): boolean {
  const fields = expression.trim().split(/\s+/);
  if (fields.length === 1) return fields[0]!.toLowerCase() === '@hourly';
  return fields[fields.length === 6 ? 2 : 1] === '*';
}

/** The first slot after `at` at either UTC offset the zone has around it, kept only if the zone really has it then. */
function everyRealHour(
  expression: string,
  timezone: string,
  inZone: (at: number) => number | undefined,
): (at: number) => number | undefined {
  const offsets = new Intl.DateTimeFormat('en', { timeZone: timezone, timeZoneName: 'longOffset' });
  const offsetAt = (at: number) => parseOffset(offsets.formatToParts(at).find((p) => p.type === 'timeZoneName')?.value);
  const fixed = new Map<number, Cron>();
  const atOffset = (offset: number, at: number) => {
    let cron = fixed.get(offset);
    if (!cron) fixed.set(offset, (cron = new Cron(expression, { utcOffset: offset })));
    return cron.nextRun(new Date(at))?.getTime();
  };
  return (at) => {
    const zoned = inZone(at);
    let best = zoned;
    for (const offset of new Set([offsetAt(at), zoned === undefined ? offsetAt(at) : offsetAt(zoned)])) {
      const candidate = atOffset(offset, at);
      if (candidate !== undefined && offsetAt(candidate) === offset && (best === undefined || candidate < best))
        best = candidate;
    }
    return best;
  };
}

/** Minutes east of UTC from Intl's "GMT+02:00", "GMT-03:30" or "GMT". */
function parseOffset(name: string | undefined): number {
  const match = /^GMT([+-])(\d{2}):(\d{2})/.exec(name ?? '');
  if (!match) return 0;
  const minutes = Number(match[2]) * 60 + Number(match[3]);
  return match[1] === '-' ? -minutes : minutes;
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
