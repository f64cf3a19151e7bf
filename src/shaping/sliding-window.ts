// A count over a sliding window, kept in fixed buckets (60 one-minute buckets for an hour):
// constant memory per counter whatever the traffic, accurate to one bucket. Time is passed in.
// The buckets are allocated at the first count and held in typed arrays: a list of 50,000 small
// company domains keeps nine counters per MX host and domain (path and breaker), most of them never
// counting anything (refusals, 5xx, local errors), and 120 boxed numbers each made a 551 MB heap that
// every garbage collection walked (bench/shaping-snapshot.ts).

export class WindowCounter {
  readonly windowMs: number;
  readonly #bucketMs: number;
  readonly #buckets: number;
  #starts: Float64Array | undefined;
  #counts: Float64Array | undefined;

  constructor(windowMs: number, buckets = 60) {
    this.windowMs = windowMs;
    this.#buckets = buckets;
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / buckets));
  }

  /** Bytes held by the buckets: none until the first count. */
  get heldBytes(): number {
    return (this.#starts?.byteLength ?? 0) + (this.#counts?.byteLength ?? 0);
  }

  add(now: number, count = 1): void {
    if (!this.#starts || !this.#counts) {
      this.#starts = new Float64Array(this.#buckets).fill(-1);
      this.#counts = new Float64Array(this.#buckets);
    }
    const start = now - (now % this.#bucketMs);
    const slot = Math.floor(now / this.#bucketMs) % this.#buckets;
    if (this.#starts[slot] !== start) {
      this.#starts[slot] = start;
      this.#counts[slot] = 0;
    }
    this.#counts[slot]! += count;
  }

  total(now: number): number {
    if (!this.#starts || !this.#counts) return 0;
    const oldest = now - this.windowMs;
    let sum = 0;
    for (let i = 0; i < this.#buckets; i += 1) {
      const start = this.#starts[i]!;
      if (start >= 0 && start > oldest && start <= now) sum += this.#counts[i]!;
    }
    return sum;
  }

  reset(): void {
    this.#starts = undefined;
    this.#counts = undefined;
  }
}
