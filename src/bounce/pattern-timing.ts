import { spawnSync } from 'node:child_process';

// Catastrophic backtracking. Bounce rule patterns (and MX backoff patterns) run over reply text the
// remote server writes, up to 2,000 characters (classifier.ts MAX_TEXT). A pattern such as
// `(x+x+)+y` took 3.9 s on 26 "x" and would take hours on 40: one such reply blocks the MTA's event
// loop for good. A RegExp cannot be interrupted, and the star-height heuristics flag a fifth of the
// shipped pack's sound patterns; so each new pattern is run, in a child process that is killed past
// a deadline, over replies built to make it backtrack: each character the pattern names (and a few
// common ones) repeated to the full length, with and without a final character that matches nothing.

/** A pattern slower than this over all its probe replies is refused. */
export const PATTERN_BUDGET_MS = 250;
const PROBE_LENGTH = 2_000;
/** The child, started and killed when one pattern never ends: node's start-up included. */
const CHILD_DEADLINE_MS = 10_000;

const CHILD = `
const { readFileSync, writeSync } = require('node:fs');
const patterns = JSON.parse(readFileSync(0, 'utf8'));
const length = ${PROBE_LENGTH};
for (let i = 0; i < patterns.length; i++) {
  writeSync(1, 'start ' + i + ' ' + Math.round(performance.now()) + '\\n');
  const regex = new RegExp(patterns[i], 'i');
  const chars = new Set([' ', 'a', 'x', '0', '.', '-', '_', '@', '<', ':']);
  for (const ch of patterns[i].replace(/\\\\[a-z]/gi, '')) if (/[\\w .@<>:-]/.test(ch)) chars.add(ch.toLowerCase());
  const started = performance.now();
  for (const ch of chars) {
    regex.test(ch.repeat(length));
    regex.test(ch.repeat(length - 1) + '\\u0001');
  }
  writeSync(1, 'took ' + i + ' ' + Math.round(performance.now() - started) + '\\n');
}
`;

export interface SlowPattern {
  pattern: string;
  /** Measured time, or undefined when it never finished before the deadline. */
  ms?: number;
}

const verdicts = new Map<string, SlowPattern | null>();

/** The patterns (valid RegExp sources, case-insensitive) that backtrack past the budget. Results are remembered per process. */
export function slowPatterns(patterns: readonly string[]): SlowPattern[] {
  let todo = [...new Set(patterns)].filter((pattern) => !verdicts.has(pattern));
  while (todo.length > 0) {
    const run = spawnSync(process.execPath, ['-e', CHILD], {
      input: JSON.stringify(todo),
      timeout: CHILD_DEADLINE_MS,
      encoding: 'utf8',
    });
    let started = -1;
    let startedAt = 0;
    for (const line of run.stdout.split('\n')) {
      const [word, index, ms] = line.split(' ');
      if (word === 'start') {
        started = Number(index);
        startedAt = Number(ms);
      }
      if (word === 'took') {
        const pattern = todo[Number(index)]!;
        verdicts.set(pattern, Number(ms) > PATTERN_BUDGET_MS ? { pattern, ms: Number(ms) } : null);
        started = -1;
      }
    }
    // Killed in the middle of one pattern (the child's clock starts with the process, as the
    // deadline does): past the budget, that one never ended; else the many before it used the
    // time, and it is tried again with the rest.
    if (started >= 0 && CHILD_DEADLINE_MS - startedAt > PATTERN_BUDGET_MS)
      verdicts.set(todo[started]!, { pattern: todo[started]! });
    else if (started >= 0) todo = todo.slice(started);
    else if (run.status !== 0) throw new Error(`checking rule patterns failed: ${run.error?.message ?? run.stderr}`);
    todo = todo.filter((pattern) => !verdicts.has(pattern));
  }
  return patterns.flatMap((pattern) => {
    const verdict = verdicts.get(pattern);
    return verdict ? [verdict] : [];
  });
}

export function describeSlowPattern(slow: SlowPattern): string {
  return slow.ms === undefined
    ? `backtracks catastrophically (did not finish within ${CHILD_DEADLINE_MS / 1000} s on a ${PROBE_LENGTH}-character reply); rewrite it without nested or overlapping repetition`
    : `backtracks: ${slow.ms} ms on ${PROBE_LENGTH}-character replies (at most ${PATTERN_BUDGET_MS} ms); rewrite it without nested or overlapping repetition`;
}
