// A count over a sliding window, kept in fixed buckets (60 one-minute buckets for an hour):
// constant memory per counter whatever the traffic, accurate to one bucket. Time is passed in.

export class WindowCounter {
  readonly windowMs: number;
  readonly #bucketMs: number;
  readonly #starts: number[];
  readonly #counts: number[];

  constructor(windowMs: number, buckets = 60) {
    this.windowMs = windowMs;
    this.#bucketMs = Math.max(1, Math.ceil(windowMs / buckets));
    this.#starts = new Array<number>(buckets).fill(-1);
    this.#counts = new Array<number>(buckets).fill(0);
  }

  add(now: number, count = 1): void {
    const start = now - (now % this.#bucketMs);
    const slot = Math.floor(now / this.#bucketMs) % this.#starts.length;
    if (this.#starts[slot] !== start) {
      this.#starts[slot] = start;
      this.#counts[slot] = 0;
    }
    this.#counts[slot]! += count;
  }

  total(now: number): number {
    const oldest = now - this.windowMs;
    let sum = 0;
    for (let i = 0; i < this.#starts.length; i += 1) {
      const start = this.#starts[i]!;
      if (start >= 0 && start > oldest && start <= now) sum += this.#counts[i]!;
    }
    return sum;
  }

  reset(): void {
    this.#starts.fill(-1);
    this.#counts.fill(0);
  }
}
