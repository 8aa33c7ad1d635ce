// When a warm daemon may go back to the manager's pool after its group ended, instead of
// exiting. A reused daemon skips Node's boot for the next group (~200 ms of CPU that would
// otherwise run beside that group's first Create) and has its create path already compiled,
// so `ctr run --rm` in a loop never waits for a spare. It may not when:
//   - it has been reused VKERNEL_SHIM_REUSE times (default 100; 0 = never reuse): a bound on
//     whatever a long life could accumulate;
//   - something moved it to another cgroup (shim_cgroup, a pod's cgroup): it must leave that
//     cgroup with its group, or the cgroup could never be removed;
//   - its RSS grew by more than RSS_GROWTH_LIMIT since it first checked in, and still has after
//     a full collection (garbage alone is no reason: the first measure is taken without one,
//     as a collection costs milliseconds right when containerd's `delete` wants the CPU).
// The manager refuses it too when its pool is full or it is not the manager that started it
// (shim/manager/pool.ts): an upgraded package never gets old code back.
import * as fs from 'node:fs';

export const DEFAULT_MAX_REUSES = 100;
const RSS_GROWTH_LIMIT = 32 * 1024 * 1024;

/** VKERNEL_SHIM_REUSE: how many more groups a daemon may serve after its first (default 100). */
export function maxReuses(env: string | undefined): number {
  if (env === undefined || env === '') return DEFAULT_MAX_REUSES;
  const n = Number(env);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_MAX_REUSES;
}

function ownCgroups(): string {
  try {
    return fs.readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return '';
  }
}

export class ReusePolicy {
  /** Groups served after the first one. */
  count = 0;
  readonly #cgroups = ownCgroups();
  readonly #rss = process.memoryUsage.rss();

  constructor(readonly max: number) {}

  /**
   * Why this daemon may not go back to the pool now; undefined when it may. `collect` runs a
   * full garbage collection, called only when the RSS looks grown.
   */
  refusal(collect: () => void = () => undefined): string | undefined {
    if (this.count >= this.max) return `reused ${this.count} times (limit ${this.max})`;
    if (ownCgroups() !== this.#cgroups) return 'moved to another cgroup while serving';
    if (this.#grown() <= RSS_GROWTH_LIMIT) return undefined;
    collect();
    const grown = this.#grown();
    if (grown > RSS_GROWTH_LIMIT) return `RSS grew by ${(grown / 2 ** 20).toFixed(1)} MiB (limit ${RSS_GROWTH_LIMIT / 2 ** 20} MiB)`;
    return undefined;
  }

  #grown(): number {
    return process.memoryUsage.rss() - this.#rss;
  }
}
