// runc's mount option table: config.json `mounts[].options` → mount(2) flags,
// propagation steps and the fs data string.
import { InvalidArgumentError } from '../errors';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_POSIXACL = 0x10000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_I_VERSION = 0x800000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

/** Flags set (clear=false) or cleared (clear=true) by an option, as runc's table. */
export const MOUNT_FLAGS: Readonly<Record<string, { clear: boolean; flag: number }>> = Object.freeze({
  async: { clear: true, flag: MS_SYNCHRONOUS },
  atime: { clear: true, flag: MS_NOATIME },
  bind: { clear: false, flag: MS_BIND },
  dev: { clear: true, flag: MS_NODEV },
  diratime: { clear: true, flag: MS_NODIRATIME },
  dirsync: { clear: false, flag: MS_DIRSYNC },
  exec: { clear: true, flag: MS_NOEXEC },
  iversion: { clear: false, flag: MS_I_VERSION },
  lazytime: { clear: false, flag: MS_LAZYTIME },
  loud: { clear: true, flag: MS_SILENT },
  mand: { clear: false, flag: MS_MANDLOCK },
  noatime: { clear: false, flag: MS_NOATIME },
  nodev: { clear: false, flag: MS_NODEV },
  nodiratime: { clear: false, flag: MS_NODIRATIME },
  noexec: { clear: false, flag: MS_NOEXEC },
  noiversion: { clear: true, flag: MS_I_VERSION },
  nolazytime: { clear: true, flag: MS_LAZYTIME },
  nomand: { clear: true, flag: MS_MANDLOCK },
  norelatime: { clear: true, flag: MS_RELATIME },
  nostrictatime: { clear: true, flag: MS_STRICTATIME },
  nosuid: { clear: false, flag: MS_NOSUID },
  nosymfollow: { clear: false, flag: MS_NOSYMFOLLOW },
  rbind: { clear: false, flag: MS_BIND | MS_REC },
  relatime: { clear: false, flag: MS_RELATIME },
  remount: { clear: false, flag: MS_REMOUNT },
  ro: { clear: false, flag: MS_RDONLY },
  rw: { clear: true, flag: MS_RDONLY },
  silent: { clear: false, flag: MS_SILENT },
  strictatime: { clear: false, flag: MS_STRICTATIME },
  suid: { clear: true, flag: MS_NOSUID },
  symfollow: { clear: true, flag: MS_NOSYMFOLLOW },
  sync: { clear: false, flag: MS_SYNCHRONOUS },
});

/** Propagation options (mounts[].options and linux.rootfsPropagation). */
export const PROPAGATION: Readonly<Record<string, number>> = Object.freeze({
  private: MS_PRIVATE,
  rprivate: MS_PRIVATE | MS_REC,
  shared: MS_SHARED,
  rshared: MS_SHARED | MS_REC,
  slave: MS_SLAVE,
  rslave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE,
  runbindable: MS_UNBINDABLE | MS_REC,
});

/** Options runc knows that vkernel does not implement: a clear error instead of surprises. */
const UNSUPPORTED: Readonly<Record<string, string>> = Object.freeze({
  tmpcopyup: 'tmpcopyup is not supported by vkernel',
  idmap: 'id-mapped mounts (idmap) are not supported by vkernel',
  ridmap: 'id-mapped mounts (ridmap) are not supported by vkernel',
  rro: 'recursive mount attributes (rro) are not supported by vkernel',
  rrw: 'recursive mount attributes (rrw) are not supported by vkernel',
  rnosuid: 'recursive mount attributes (rnosuid) are not supported by vkernel',
  rsuid: 'recursive mount attributes (rsuid) are not supported by vkernel',
  rnodev: 'recursive mount attributes (rnodev) are not supported by vkernel',
  rdev: 'recursive mount attributes (rdev) are not supported by vkernel',
  rnoexec: 'recursive mount attributes (rnoexec) are not supported by vkernel',
  rexec: 'recursive mount attributes (rexec) are not supported by vkernel',
  rnodiratime: 'recursive mount attributes (rnodiratime) are not supported by vkernel',
  rdiratime: 'recursive mount attributes (rdiratime) are not supported by vkernel',
  rrelatime: 'recursive mount attributes (rrelatime) are not supported by vkernel',
  rnorelatime: 'recursive mount attributes (rnorelatime) are not supported by vkernel',
  rnoatime: 'recursive mount attributes (rnoatime) are not supported by vkernel',
  ratime: 'recursive mount attributes (ratime) are not supported by vkernel',
  rstrictatime: 'recursive mount attributes (rstrictatime) are not supported by vkernel',
  rnostrictatime: 'recursive mount attributes (rnostrictatime) are not supported by vkernel',
  rnosymfollow: 'recursive mount attributes (rnosymfollow) are not supported by vkernel',
  rsymfollow: 'recursive mount attributes (rsymfollow) are not supported by vkernel',
});

export interface ParsedMountOptions {
  /** MS_* flags to pass to mount(2). */
  flags: number;
  /** Flags an option explicitly cleared ("rw", "exec", ...), for bind remounts. */
  clearFlags: number;
  /** Propagation changes applied one after another after the mount. */
  propagation: number[];
  /** Everything else, comma-joined, for the filesystem. */
  data: string;
}

/**
 * Parses mount options as runc does: a later option overrides an earlier one for the
 * same flag; unknown options go to the data string. `defaults` is dropped (runc passes
 * it to the filesystem, where it is at best ignored). Unsupported options throw an
 * InvalidArgumentError naming `${field}[i]`.
 */
export function parseMountOptions(options: readonly string[] | undefined, field = 'options'): ParsedMountOptions {
  let flags = 0;
  let clearFlags = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  (options ?? []).forEach((o, i) => {
    const f = Object.prototype.hasOwnProperty.call(MOUNT_FLAGS, o) ? MOUNT_FLAGS[o] : undefined;
    if (f) {
      if (f.clear) {
        flags &= ~f.flag;
        clearFlags |= f.flag;
      } else {
        flags |= f.flag;
        clearFlags &= ~f.flag;
      }
      return;
    }
    if (Object.prototype.hasOwnProperty.call(PROPAGATION, o)) {
      propagation.push(PROPAGATION[o]);
      return;
    }
    if (Object.prototype.hasOwnProperty.call(UNSUPPORTED, o)) {
      throw new InvalidArgumentError(`${field}[${i}]: ${UNSUPPORTED[o]} (got ${JSON.stringify(o)})`, `${field}[${i}]`);
    }
    if (o === 'defaults') return;
    data.push(o);
  });
  return { flags, clearFlags, propagation, data: data.join(',') };
}
