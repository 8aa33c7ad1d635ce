// Typed access to build/vknative.node (runtime/native/vknative.c): the syscalls Node lacks.
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../paths';

export interface VkNative {
  setChildSubreaper(): void;
  /** [pid, exitCode (-1 if signalled), signal (0 if exited)] or null with nohang and no exit yet. */
  waitpid(pid: number, nohang: boolean): [number, number, number] | null;
  /** An exited child's pid without reaping it, or 0. */
  peekExitedChild(): number;
  /** The pid at the other end of a connected AF_UNIX socket (SO_PEERCRED, as of connect). */
  peerPid(fd: number): number;
  mkfifo(file: string, mode: number): void;
  setWinsize(fd: number, rows: number, cols: number): void;
  /** A listening AF_UNIX stream socket (close-on-exec) bound to `file`; backlog default 4. */
  listenUnix(file: string, backlog?: number): number;
  acceptRecvFd(listenFd: number, timeoutMs: number): Promise<{ fd: number; name: string }>;
  /** A connected, blocking AF_UNIX stream socket fd (close-on-exec); errors carry `errno`. */
  connectUnix(file: string): number;
  /** Sends `data` with `fd` attached (SCM_RIGHTS) on a connected socket. */
  sendFd(sockFd: number, data: Buffer, fd: number): void;
  /** One recvmsg on the thread pool: fd -1 if none was attached, empty data at end of stream; timeoutMs < 0 waits forever. */
  recvFd(sockFd: number, timeoutMs: number): Promise<{ fd: number; data: Buffer }>;
  /** flock(LOCK_EX | LOCK_NB): true when acquired, false when another open file holds it. */
  flock(fd: number): boolean;
  /** mount(2); empty source/fstype/data are passed as NULL. */
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  /** pipe2(O_CLOEXEC): [readFd, writeFd]. */
  pipe(): [number, number];
  /**
   * bpf(BPF_PROG_LOAD) of `insns` (8 bytes per instruction) → a close-on-exec prog fd. A
   * refused program's error carries the verifier log (`log`, also appended to the message).
   */
  bpfProgLoad(progType: number, insns: Buffer, license: string): number;
  /** bpf(BPF_PROG_ATTACH): attach `progFd` to `targetFd` (e.g. a cgroup directory fd). */
  bpfProgAttach(targetFd: number, progFd: number, attachType: number, flags: number): void;
  /** bpf(BPF_PROG_DETACH) of one program. */
  bpfProgDetach(targetFd: number, progFd: number, attachType: number): void;
  /** bpf(BPF_PROG_QUERY): ids of the programs attached to the target itself (at most 64). */
  bpfProgQuery(targetFd: number, attachType: number): { attachFlags: number; ids: number[] };
  /** bpf(BPF_PROG_GET_FD_BY_ID) → a close-on-exec prog fd; ENOENT once the program is gone. */
  bpfProgGetFdById(id: number): number;
  /** eventfd(2). */
  eventfd(initval: number, flags: number): number;
  /**
   * Watches an eventfd from a native thread (never blocking the event loop or the libuv
   * thread pool): `cb(value, 0)` for each counter value read, `cb(0, errno)` once if the
   * watch fails. Keeps the event loop alive until unwatchEventfd; the fd stays the caller's.
   */
  watchEventfd(fd: number, cb: (value: number, errno: number) => void): EventfdWatch;
  /** Stops and joins the watch thread (idempotent); close the fd afterwards. */
  unwatchEventfd(watch: EventfdWatch): void;
}

/** Opaque handle of a native eventfd watch. */
export type EventfdWatch = { readonly __eventfdWatch: unique symbol };

let loaded: VkNative | undefined;

export function native(): VkNative {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require(process.env.VKERNEL_NATIVE ?? path.join(PACKAGE_ROOT, 'build', 'vknative.node')) as VkNative;
  return loaded;
}
