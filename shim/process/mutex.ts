// A FIFO async mutex: one lifecycle operation per process at a time. Start holds it across
// "runtime start + publish TaskStart", the exit path takes it before publishing TaskExit,
// so no exit event can overtake its start event.

export class AsyncMutex {
  #tail: Promise<void> = Promise.resolve();
  #held = false;

  get locked(): boolean {
    return this.#held;
  }

  /** Runs fn alone: callers queue in arrival order; a throwing fn releases the lock too. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const prev = this.#tail;
    this.#tail = prev.then(() => next);
    await prev;
    this.#held = true;
    try {
      return await fn();
    } finally {
      this.#held = false;
      release();
    }
  }
}
