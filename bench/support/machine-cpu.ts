import { cpus } from 'node:os';

// The whole machine's CPU time over a window (every process and the kernel, from os.cpus()): whether
// a run left cores idle, or the machine was the limit. Benchmarks only.

export interface MachineCpu {
  busySeconds: number;
  idleSeconds: number;
  cores: number;
}

function totals(): { busy: number; idle: number; cores: number } {
  let busy = 0;
  let idle = 0;
  const all = cpus();
  for (const { times } of all) {
    busy += times.user + times.nice + times.sys + times.irq;
    idle += times.idle;
  }
  return { busy, idle, cores: all.length };
}

/** Starts a window; the returned function ends it and gives the machine's CPU seconds over it. */
export function machineCpuWindow(): () => MachineCpu {
  const start = totals();
  return () => {
    const end = totals();
    return {
      busySeconds: Number(((end.busy - start.busy) / 1000).toFixed(2)),
      idleSeconds: Number(((end.idle - start.idle) / 1000).toFixed(2)),
      cores: end.cores,
    };
  };
}
