// A path's FIFO of messages waiting for a connection: taken from the head without shifting the
// array on every message, compacted now and then.

export class JobQueue<J> {
  #jobs: J[] = [];
  #head = 0;

  get size(): number {
    return this.#jobs.length - this.#head;
  }

  push(job: J): void {
    this.#jobs.push(job);
  }

  take(): J | undefined {
    if (this.#head >= this.#jobs.length) return undefined;
    const job = this.#jobs[this.#head++];
    if (this.#head > 1_024 && this.#head * 2 > this.#jobs.length) {
      this.#jobs = this.#jobs.slice(this.#head);
      this.#head = 0;
    }
    return job;
  }

  /** The job `index` places behind the head (0 = the next one taken), left in place. */
  at(index: number): J | undefined {
    return index < this.size ? this.#jobs[this.#head + index] : undefined;
  }

  /** Removes the last `count` jobs (the latest queued) and returns them. */
  takeTail(count: number): J[] {
    return count <= 0 ? [] : this.#jobs.splice(this.#jobs.length - Math.min(count, this.size), count);
  }

  /** Removes and returns every job. */
  drain(): J[] {
    const rest = this.#jobs.slice(this.#head);
    this.#jobs = [];
    this.#head = 0;
    return rest;
  }
}
