import type { Sys } from '../sys';
import { isSameLiveProcess } from '../sys';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the process is gone (or a zombie). We are usually not its parent, so we cannot wait(2). */
export async function waitGone(sys: Sys, pid: number, startTime: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (isSameLiveProcess(sys, pid, startTime)) {
    if (Date.now() > deadline) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
  return true;
}
