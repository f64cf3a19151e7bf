import { spawn } from 'node:child_process';

// Catastrophic backtracking. Bounce rule patterns (and MX backoff patterns) run over reply text the
// remote server writes, up to 2,000 characters (classifier.ts MAX_TEXT). A pattern such as
// `(x+x+)+y` took 3.9 s on 26 "x" and would take hours on 40: one such reply blocks the MTA's event
// loop for good. A RegExp cannot be interrupted, and the star-height heuristics flag a fifth of the
// shipped pack's sound patterns; so each new pattern is run, in one child process for all of them,
// over replies built to make it backtrack: each character the pattern names (and a few common ones)
// repeated to the full length, with and without a final character that matches nothing. The child
// says when it starts each pattern; one still running past KILL_AFTER_MS is never going to end: the
// child is killed there and a new one takes the patterns after it. The check is asynchronous: a
// running role reloading its rules keeps serving SMTP sessions, the API and tracking meanwhile.

/** A pattern slower than this over all its probe replies is refused. */
export const PATTERN_BUDGET_MS = 250;
/** Twice the budget, so a pattern near the budget is measured by the child, not cut by a late timer. */
const KILL_AFTER_MS = 2 * PATTERN_BUDGET_MS;
const PROBE_LENGTH = 2_000;
/** Node's start-up, before the first pattern: a child that says nothing by then is broken. */
const CHILD_STARTUP_MS = 10_000;

const CHILD = `
const { readFileSync, writeSync } = require('node:fs');
const patterns = JSON.parse(readFileSync(0, 'utf8'));
const length = ${PROBE_LENGTH};
for (let i = 0; i < patterns.length; i++) {
  writeSync(1, 'start ' + i + '\\n');
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
  /** Measured time, or undefined when it was still running when the child was killed. */
  ms?: number;
}

const verdicts = new Map<string, SlowPattern | null>();

/** The patterns (valid RegExp sources, case-insensitive) that backtrack past the budget. Results are remembered per process. */
export async function slowPatterns(patterns: readonly string[]): Promise<SlowPattern[]> {
  let todo = [...new Set(patterns)].filter((pattern) => !verdicts.has(pattern));
  while (todo.length > 0) {
    await timeInChild(todo);
    todo = todo.filter((pattern) => !verdicts.has(pattern));
  }
  return patterns.flatMap((pattern) => {
    const verdict = verdicts.get(pattern);
    return verdict ? [verdict] : [];
  });
}

/** Runs `todo` in one child, recording a verdict for each pattern it finishes and for the one it is killed on. */
function timeInChild(todo: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
    let pending = '';
    let stderr = '';
    let running = -1;
    let killedOn = -1;
    let silent = false;
    let timer = setTimeout(() => {
      silent = true;
      child.kill('SIGKILL');
    }, CHILD_STARTUP_MS);
    const kill = (index: number): void => {
      killedOn = index;
      child.kill('SIGKILL');
    };
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [word, index, ms] = line.split(' ');
        if (word === 'start') {
          running = Number(index);
          clearTimeout(timer);
          timer = setTimeout(() => kill(running), KILL_AFTER_MS);
        } else if (word === 'took') {
          clearTimeout(timer);
          const pattern = todo[Number(index)]!;
          verdicts.set(pattern, Number(ms) > PATTERN_BUDGET_MS ? { pattern, ms: Number(ms) } : null);
          running = -1;
        }
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`checking rule patterns failed: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (killedOn >= 0) verdicts.set(todo[killedOn]!, { pattern: todo[killedOn]! });
      if (killedOn >= 0 || code === 0) resolve();
      else
        reject(
          new Error(
            `checking rule patterns failed: ${silent ? `the child started nothing within ${CHILD_STARTUP_MS / 1000} s` : stderr.trim() || `exit code ${code}`}`,
          ),
        );
    });
    // A child killed before it read its input closes stdin under us: that is reported by 'close'.
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(todo));
  });
}

export function describeSlowPattern(slow: SlowPattern): string {
  return slow.ms === undefined
    ? `backtracks catastrophically (still running after ${KILL_AFTER_MS} ms on a ${PROBE_LENGTH}-character reply, at most ${PATTERN_BUDGET_MS} ms); rewrite it without nested or overlapping repetition`
    : `backtracks: ${slow.ms} ms on ${PROBE_LENGTH}-character replies (at most ${PATTERN_BUDGET_MS} ms); rewrite it without nested or overlapping repetition`;
}
