/** Undo steps registered as a create proceeds, run in reverse when it fails. */
export class CleanupStack {
  readonly #steps: { what: string; fn: () => unknown }[] = [];

  push(what: string, fn: () => unknown): void {
    this.#steps.push({ what, fn });
  }

  /** Runs every step even if some fail; returns the failures' descriptions. */
  async run(): Promise<string[]> {
    const failures: string[] = [];
    while (this.#steps.length > 0) {
      const { what, fn } = this.#steps.pop()!;
      try {
        await fn();
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message}`);
      }
    }
    return failures;
  }

  /** Success: forget the undo steps. */
  release(): void {
    this.#steps.length = 0;
  }
}
