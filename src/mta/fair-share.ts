import { JobQueue } from './job-queue.ts';

// Fair share of an MX path's budget between deliveries (issue 18). Each delivery has a priority
// (0–9) and a weight (1–100). On one path, a message of a higher priority always goes before one of
// a lower priority; among deliveries of the same priority, messages leave in proportion to their
// weights (stride scheduling: each delivery's pass advances by 1/weight per message, the lowest pass
// goes next). The claim splits each batch the same way, with a trickle for lower priorities so
// their messages to other paths keep flowing (claimQuotas).

/** Who a message belongs to, as the fair share sees it. */
export interface Share {
  deliveryId: number;
  priority: number;
  weight: number;
}

/** A message without a share (tests, internal jobs) counts as one delivery 0 of the default priority. */
const noShare: Share = { deliveryId: 0, priority: 5, weight: 1 };

interface Flow<J> {
  share: Share;
  jobs: JobQueue<J>;
  /** Stride scheduling: messages taken / weight, from the path's virtual time when it (re)joined. */
  pass: number;
}

/** Whether a message of share `a` at pass `aPass` leaves before one of `b` at `bPass`. */
function goesBefore(a: Share, aPass: number, b: Share, bPass: number): boolean {
  return a.priority > b.priority || (a.priority === b.priority && aPass < bPass);
}

/** A path's waiting messages, one FIFO per delivery, taken in fair-share order. */
export class FairJobQueue<J extends { share?: Share | undefined }> {
  readonly #flows = new Map<number, Flow<J>>();
  #size = 0;
  /** The pass of the last message taken: a delivery that joins starts there, with no credit saved. */
  #virtual = 0;

  get size(): number {
    return this.#size;
  }

  push(job: J): void {
    const share = job.share ?? noShare;
    let flow = this.#flows.get(share.deliveryId);
    if (!flow) {
      flow = { share, jobs: new JobQueue<J>(), pass: this.#virtual };
      this.#flows.set(share.deliveryId, flow);
    }
    // The latest job carries the delivery's current priority and weight (changed while it runs).
    flow.share = share;
    flow.jobs.push(job);
    this.#size++;
  }

  take(): J | undefined {
    const flow = this.#next();
    if (!flow) return undefined;
    const job = flow.jobs.take()!;
    this.#size--;
    this.#virtual = flow.pass;
    flow.pass += 1 / flow.share.weight;
    if (flow.jobs.size === 0) this.#flows.delete(flow.share.deliveryId);
    return job;
  }

  /** The next `count` jobs in the order take() would return them (if nothing is pushed meanwhile), left in place. */
  peek(count: number): J[] {
    const cursors = [...this.#flows.values()].map((flow) => ({ flow, pass: flow.pass, taken: 0 }));
    const jobs: J[] = [];
    while (jobs.length < count) {
      let best: (typeof cursors)[number] | undefined;
      for (const cursor of cursors)
        if (
          cursor.taken < cursor.flow.jobs.size &&
          (!best || goesBefore(cursor.flow.share, cursor.pass, best.flow.share, best.pass))
        )
          best = cursor;
      if (!best) break;
      jobs.push(best.flow.jobs.at(best.taken++)!);
      best.pass += 1 / best.flow.share.weight;
    }
    return jobs;
  }

  /** Removes `count` jobs the fair share would take last (lowest priority, furthest ahead). */
  takeTail(count: number): J[] {
    const taken: J[] = [];
    while (taken.length < count && this.#size > 0) {
      const flow = this.#last()!;
      const job = flow.jobs.takeTail(1)[0]!;
      this.#size--;
      if (flow.jobs.size === 0) this.#flows.delete(flow.share.deliveryId);
      taken.push(job);
    }
    return taken;
  }

  drain(): J[] {
    const jobs: J[] = [];
    for (const flow of this.#flows.values()) jobs.push(...flow.jobs.drain());
    this.#flows.clear();
    this.#size = 0;
    return jobs;
  }

  /** Waiting messages per delivery, with its priority and weight. */
  waiting(): Array<Share & { waiting: number }> {
    return [...this.#flows.values()].map((flow) => ({ ...flow.share, waiting: flow.jobs.size }));
  }

  #next(): Flow<J> | undefined {
    let best: Flow<J> | undefined;
    for (const flow of this.#flows.values())
      if (!best || goesBefore(flow.share, flow.pass, best.share, best.pass)) best = flow;
    return best;
  }

  #last(): Flow<J> | undefined {
    let worst: Flow<J> | undefined;
    const end = (flow: Flow<J>) => flow.pass + flow.jobs.size / flow.share.weight;
    for (const flow of this.#flows.values())
      if (
        !worst ||
        flow.share.priority < worst.share.priority ||
        (flow.share.priority === worst.share.priority && end(flow) > end(worst))
      )
        worst = flow;
    return worst;
  }
}

/**
 * How many of `limit` claimed messages each delivery with due messages gets: in proportion to
 * weight × 16^(priority − highest priority due), so a higher priority takes nearly all of a batch,
 * and at least one each, so a lower priority's messages to other MX paths are never stuck.
 * The quotas add up to `limit` (largest remainders; equal remainders in the order `random` draws,
 * so no delivery gains the rounding batch after batch). Only the `maxDeliveries` strongest get a
 * quota (one claim statement each); the others, and what a delivery cannot use (fewer due than its
 * quota), the caller claims oldest-due-first.
 */
export function claimQuotas(
  due: readonly Share[],
  limit: number,
  maxDeliveries = 50,
  random: () => number = Math.random,
): Map<number, number> {
  const quotas = new Map<number, number>();
  if (due.length === 0 || limit <= 0) return quotas;
  const top = Math.max(...due.map((share) => share.priority));
  const strength = (share: Share) => share.weight * 16 ** (share.priority - top);
  const strongest = [...due].sort((a, b) => strength(b) - strength(a)).slice(0, maxDeliveries);
  const total = strongest.reduce((sum, share) => sum + strength(share), 0);
  let given = 0;
  const remainders: Array<{ deliveryId: number; remainder: number; draw: number }> = [];
  for (const share of strongest) {
    const exact = (limit * strength(share)) / total;
    const quota = Math.max(1, Math.floor(exact));
    quotas.set(share.deliveryId, quota);
    given += quota;
    remainders.push({ deliveryId: share.deliveryId, remainder: exact - Math.floor(exact), draw: random() });
  }
  remainders.sort((a, b) => b.remainder - a.remainder || a.draw - b.draw);
  for (const { deliveryId } of remainders) {
    if (given >= limit) break;
    quotas.set(deliveryId, (quotas.get(deliveryId) ?? 0) + 1);
    given += 1;
  }
  return quotas;
}
