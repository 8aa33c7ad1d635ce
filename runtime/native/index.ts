// Typed access to build/vknative.node (runtime/native/vknative.c): the syscalls Node lacks.
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../paths';

export interface VkNative {
  setChildSubreaper(): void;
  /** [pid, exitCode (-1 if signalled), signal (0 if exited)] or null with nohang and no exit yet. */
  waitpid(pid: number, nohang: boolean): [number, number, number] | null;
  /** An exited child's pid without reaping it, or 0. */
  peekExitedChild(): number;
  mkfifo(file: string, mode: number): void;
  setWinsize(fd: number, rows: number, cols: number): void;
  listenUnix(file: string): number;
  acceptRecvFd(listenFd: number, timeoutMs: number): Promise<{ fd: number; name: string }>;
}

let loaded: VkNative | undefined;

export function native(): VkNative {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require(process.env.VKERNEL_NATIVE ?? path.join(PACKAGE_ROOT, 'build', 'vknative.node')) as VkNative;
  return loaded;
}
