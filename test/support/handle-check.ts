import { afterAll, beforeAll } from 'vitest';

// Every test file (src/ and test/) must leave the process as it found it: the sockets, servers,
// timers, child processes and worker threads it opened closed again. A leaked handle keeps a real
// process alive after its work is done (a role that never exits on SIGTERM, a CLI that hangs), so
// the suite fails on it. The check compares process.getActiveResourcesInfo() (what keeps the event
// loop alive; unref'd timers and sockets do not count) after the file's own afterAll hooks with the
// list before its first test. Closing is asynchronous (a socket's 'close' comes a turn or two after
// end()), so the count may settle for a while before the check fails. A leaked handle never closes:
// how long the check waits cannot let a leak pass, only decides how soon it is reported; 2 s was
// less than a loaded machine takes to close a Redis socket (test/shaping-redis.test.ts failed with
// "TCPSocketWrap ×1" at a load of 17 on 2 cores). So 10 s, well inside the 60 s hook timeout.

const settleMs = 10_000;
const pollMs = 20;

function countByType(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Resource types with more instances now than at the start, as "Type ×n" (empty when none). */
function leaked(baseline: Map<string, number>): string[] {
  const extra: string[] = [];
  for (const [type, count] of countByType()) {
    const more = count - (baseline.get(type) ?? 0);
    if (more > 0) extra.push(`${type} ×${more}`);
  }
  return extra;
}

let baseline = new Map<string, number>();

beforeAll(() => {
  baseline = countByType();
});

afterAll(async () => {
  const deadline = performance.now() + settleMs;
  let extra = leaked(baseline);
  while (extra.length > 0 && performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, pollMs).unref());
    extra = leaked(baseline);
  }
  if (extra.length > 0)
    throw new Error(
      `this test file leaked handles still open ${settleMs} ms after its last hook: ${extra.join(', ')} ` +
        '(close servers, sockets, clients, timers, child processes and workers in afterAll or finally; unref a timer that must outlive the file)',
    );
});
