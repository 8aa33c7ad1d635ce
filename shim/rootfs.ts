// The container's root file system from CreateTaskRequest.rootfs: each mount, in order, at
// <bundle>/rootfs (containerd 1.7+: at rootfs/<target>), as containerd's mount.All does.
// Options are split like containerd's parseMountOptions: known words become MS_* flags,
// propagation words a second mount(2) call, everything else the data string (overlay's
// lowerdir=..., upperdir=..., workdir=...). A read-only bind is remounted read-only, since
// the kernel ignores MS_RDONLY on the bind itself. A failure unmounts what was mounted.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InternalError, InvalidArgumentError, NotImplementedError } from '../runtime/errors';
import { native } from '../runtime/native';
import type { ProtoInput, ProtoTypes } from './proto';

export type MountRequest = ProtoInput<ProtoTypes['containerd.types.Mount']>;

export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
} as const;

const PROPAGATION = MS.SHARED | MS.PRIVATE | MS.SLAVE | MS.UNBINDABLE;
const MNT_DETACH = 2;
const EINVAL = 22;
const ENOENT = 2;
const EBUSY = 16;

/** [clear, flag]: clear=true means the word removes the flag ("rw" clears MS_RDONLY). */
const FLAG_WORDS: Record<string, [boolean, number]> = {
  async: [true, MS.SYNCHRONOUS],
  atime: [true, MS.NOATIME],
  bind: [false, MS.BIND],
  defaults: [false, 0],
  dev: [true, MS.NODEV],
  diratime: [true, MS.NODIRATIME],
  dirsync: [false, MS.DIRSYNC],
  exec: [true, MS.NOEXEC],
  mand: [false, MS.MANDLOCK],
  noatime: [false, MS.NOATIME],
  nodev: [false, MS.NODEV],
  nodiratime: [false, MS.NODIRATIME],
  noexec: [false, MS.NOEXEC],
  nomand: [true, MS.MANDLOCK],
  norelatime: [true, MS.RELATIME],
  nostrictatime: [true, MS.STRICTATIME],
  nosuid: [false, MS.NOSUID],
  rbind: [false, MS.BIND | MS.REC],
  relatime: [false, MS.RELATIME],
  remount: [false, MS.REMOUNT],
  ro: [false, MS.RDONLY],
  rw: [true, MS.RDONLY],
  strictatime: [false, MS.STRICTATIME],
  suid: [true, MS.NOSUID],
  sync: [false, MS.SYNCHRONOUS],
  private: [false, MS.PRIVATE],
  rprivate: [false, MS.PRIVATE | MS.REC],
  shared: [false, MS.SHARED],
  rshared: [false, MS.SHARED | MS.REC],
  slave: [false, MS.SLAVE],
  rslave: [false, MS.SLAVE | MS.REC],
  unbindable: [false, MS.UNBINDABLE],
  runbindable: [false, MS.UNBINDABLE | MS.REC],
};

/** The longest data string mount(2) takes (one page). */
const MAX_MOUNT_DATA = 4095;

export interface ParsedMountOptions {
  flags: number;
  data: string;
}

export function parseMountOptions(options: readonly string[]): ParsedMountOptions {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = FLAG_WORDS[o];
    if (f === undefined) {
      if (o === 'loop') throw new NotImplementedError('rootfs: loop mounts are not supported');
      data.push(o);
    } else if (f[0]) flags &= ~f[1];
    else flags |= f[1];
  }
  return { flags, data: data.join(',') };
}

/** One mount(2) sequence for m at target (containerd's Mount). */
export function mountOne(m: MountRequest, target: string): void {
  const { flags, data } = parseMountOptions(m.options ?? []);
  if (data.length > MAX_MOUNT_DATA) {
    throw new InvalidArgumentError(`rootfs: ${m.type} mount options are ${data.length} bytes, over the kernel's ${MAX_MOUNT_DATA}`, 'rootfs');
  }
  const n = native();
  const plain = flags & ~PROPAGATION;
  if ((flags & MS.REMOUNT) === 0 || data !== '') n.mount(m.source ?? '', target, m.type ?? '', plain, data);
  if (flags & PROPAGATION) n.mount('', target, '', flags & (PROPAGATION | MS.REC | MS.SILENT), '');
  if ((plain & (MS.BIND | MS.RDONLY)) === (MS.BIND | MS.RDONLY)) n.mount('', target, '', plain | MS.REMOUNT, '');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Unmounts everything stacked on target (containerd's UnmountAll): until EINVAL (not a
 * mount point), retrying EBUSY for a while and then detaching lazily.
 */
export async function unmountAll(target: string): Promise<void> {
  const n = native();
  for (let busy = 0; ; ) {
    try {
      n.umount2(target, 0);
      continue;
    } catch (err) {
      const errno = (err as { errno?: number }).errno;
      if (errno === EINVAL || errno === ENOENT) return;
      if (errno !== EBUSY) throw err;
      if (++busy < 50) {
        await sleep(50);
        continue;
      }
      n.umount2(target, MNT_DETACH);
    }
  }
}

/** Where a mount goes: rootfs, or rootfs/<target> (containerd 1.7+), never outside rootfs. */
export function mountTarget(rootfs: string, target: string | undefined | null): string {
  if (!target) return rootfs;
  const t = path.resolve(rootfs, `./${path.posix.normalize(`/${target}`)}`);
  if (t !== rootfs && !t.startsWith(rootfs + '/')) {
    throw new InvalidArgumentError(`rootfs: mount target ${JSON.stringify(target)} leaves the rootfs`, 'rootfs.target');
  }
  return t;
}

export interface MountedRootfs {
  readonly rootfs: string;
  /** Mount points in the order they were mounted. */
  readonly targets: readonly string[];
  /** Unmounts every target, deepest-last-mounted first. Idempotent. */
  unmount(): Promise<void>;
}

/** Mounts `mounts` in order under <bundle>/rootfs; on failure unmounts what it mounted and throws. */
export async function mountRootfs(bundle: string, mounts: readonly MountRequest[]): Promise<MountedRootfs> {
  const rootfs = path.join(bundle, 'rootfs');
  const targets: string[] = [];
  let done = false;
  const unmount = async (): Promise<void> => {
    if (done) return;
    done = true;
    for (const t of [...new Set(targets)].reverse()) await unmountAll(t);
  };
  if (mounts.length > 0) fs.mkdirSync(rootfs, { recursive: true, mode: 0o711 });
  try {
    for (const m of mounts) {
      const target = mountTarget(rootfs, m.target);
      if (target !== rootfs) fs.mkdirSync(target, { recursive: true, mode: 0o755 });
      try {
        mountOne(m, target);
      } catch (err) {
        if (err instanceof InvalidArgumentError || err instanceof NotImplementedError) throw err;
        throw new InternalError(
          `rootfs: mount ${m.type ?? ''} ${m.source ?? ''} on ${target} (${(m.options ?? []).join(',')}): ${(err as Error).message}`,
          { cause: err },
        );
      }
      targets.push(target);
    }
  } catch (err) {
    await unmount().catch(() => undefined);
    throw err;
  }
  return { rootfs, targets, unmount };
}
