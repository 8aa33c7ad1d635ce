// Shared by the syscall-layer suites (vkernel-syscalls, vkernel-fallbacks): the acceptance
// limits, polling, and where a container's agent / tracer files live.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LinuxResources } from '../../../runtime/spec/types';
import { runtimeRoot } from '../../harness';

export const MiB = 1024 * 1024;
/** cpu quota 50000/100000 (1 CPU on any host) and 256 MiB. */
export const LIMITS: LinuxResources = { memory: { limit: 256 * MiB }, cpu: { quota: 50000, period: 100000 } };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function until(f: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await sleep(50);
  }
  return f();
}

/** Alive and not a zombie. */
export function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The container's agent dir (runtime/container/create.ts agentDir). */
export const agentDir = (id: string) => path.join(runtimeRoot(), id, 'agent');
