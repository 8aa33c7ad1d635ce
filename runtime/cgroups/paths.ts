// linux.cgroupsPath → the cgroup each hierarchy uses, with runc's cgroupfs-driver semantics:
//
//   absolute "/a/b"      → <hierarchy mountpoint>/a/b for every controller
//   relative "a/b"       → v1 (and the hybrid unified tree): <our own cgroup in that hierarchy>/a/b
//                          v2: <parent of our own cgroup>/a/b (runc: the own cgroup usually has
//                          processes, so its subtree_control cannot be used)
//   empty                → relative "<container id>" (runc: Name = id, Path = "")
//   "slice:prefix:name"  → absolute "<expanded slice>/<prefix>-<name>.scope", the directory the
//                          systemd driver would have used. runc 1.1 with cgroupfs takes such a
//                          string literally (a relative directory named "system.slice:…"); we
//                          expand it because containerd's CRI sends this form and the literal
//                          directory is never what anyone wants.
//
// Relative paths go through runc's CleanPath, so "../.." cannot climb out of the own cgroup.

import * as path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, NotImplementedError } from '../errors';
import type { CgroupMount, Host, SelfCgroups } from './host';

/** runc utils.CleanPath: Clean, and a relative path cannot escape its base. */
export function cleanPath(p: string): string {
  if (p === '') return '';
  let out = path.posix.normalize(p);
  if (!path.posix.isAbsolute(out)) {
    out = path.posix.relative('/', path.posix.normalize('/' + out));
  }
  if (out.length > 1 && out.endsWith('/')) out = out.slice(0, -1);
  return out === '.' ? '' : out;
}

/** systemd's slice naming: "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" → "/". */
export function expandSlice(slice: string, field = 'linux.cgroupsPath'): string {
  const suffix = '.slice';
  const bad = () => new InvalidArgumentError(`${field}: invalid slice name ${JSON.stringify(slice)}`, field);
  if (slice.length <= suffix.length || !slice.endsWith(suffix) || slice.includes('/')) throw bad();
  const name = slice.slice(0, -suffix.length);
  if (name === '-') return '/';
  let out = '';
  let prefix = '';
  for (const component of name.split('-')) {
    if (component === '') throw bad();
    out += `/${prefix}${component}${suffix}`;
    prefix += `${component}-`;
  }
  return out;
}

export interface SystemdPath {
  slice: string;
  prefix: string;
  name: string;
}

/** "slice:prefix:name" when the string has that shape (no "/", slice empty or "*.slice"). */
export function parseSystemdPath(p: string): SystemdPath | undefined {
  if (p.includes('/')) return undefined;
  const parts = p.split(':');
  if (parts.length !== 3) return undefined;
  const [slice, prefix, name] = parts;
  if (name === '') return undefined;
  if (slice !== '' && !slice.endsWith('.slice')) return undefined;
  return { slice, prefix, name };
}

/** runc's getUnitName: a scope "<prefix>-<name>.scope" unless the name is itself a slice. */
export function systemdUnitName(prefix: string, name: string): string {
  if (name.endsWith('.slice')) return name;
  return prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`;
}

export function systemdToCgroupfs(sp: SystemdPath): string {
  const slice = expandSlice(sp.slice === '' ? 'system.slice' : sp.slice);
  return path.posix.join(slice, systemdUnitName(sp.prefix, sp.name));
}

export interface InnerPath {
  /** Cleaned path: absolute (from the hierarchy root) or relative (to our own cgroup). */
  path: string;
  absolute: boolean;
}

/**
 * Resolve the OCI cgroupsPath the way runc's cgroupfs driver does (see the file comment).
 * `systemd` is the --systemd-cgroup flag: without systemd running that is an error telling
 * the user to drop the flag; with systemd running the systemd driver is not implemented.
 */
export function resolveInnerPath(id: string, cgroupsPath: string | undefined, systemd: boolean, host: Host): InnerPath {
  if (systemd) {
    if (!host.systemdRunning()) {
      throw new FailedPreconditionError(
        '--systemd-cgroup: systemd is not running on this host (/run/systemd/system does not exist); drop --systemd-cgroup to use the cgroupfs driver',
      );
    }
    if (cgroupsPath && !parseSystemdPath(cgroupsPath)) {
      throw new InvalidArgumentError(
        `linux.cgroupsPath: expected the format "slice:prefix:name" with --systemd-cgroup (got ${JSON.stringify(cgroupsPath)})`,
        'linux.cgroupsPath',
      );
    }
    throw new NotImplementedError(
      '--systemd-cgroup: the systemd cgroup driver (transient units over D-Bus) is not implemented; drop --systemd-cgroup to use the cgroupfs driver',
    );
  }
  let result: InnerPath;
  const raw = cgroupsPath ?? '';
  const sp = raw === '' ? undefined : parseSystemdPath(raw);
  if (sp) {
    result = { path: systemdToCgroupfs(sp), absolute: true };
  } else if (raw === '') {
    if (id === '') throw new InvalidArgumentError('container id: must not be empty', 'id');
    result = { path: cleanPath(id), absolute: false };
  } else {
    const cleaned = cleanPath(raw);
    result = { path: cleaned, absolute: path.posix.isAbsolute(cleaned) };
  }
  if (result.path === '' || result.path === '/') {
    throw new InvalidArgumentError(
      `linux.cgroupsPath: must name a cgroup below ${result.absolute ? 'the hierarchy root' : "the runtime's own cgroup"} (got ${JSON.stringify(raw)})`,
      'linux.cgroupsPath',
    );
  }
  return result;
}

/** The mountpoint-relative path of a cgroup the kernel shows as `cg`, for a mount of `mountRoot`. */
function relativeToMount(mountRoot: string, cg: string): string {
  const rel = path.posix.relative(mountRoot, cg);
  if (rel.startsWith('..')) return ''; // our cgroup is outside what this mount shows
  return rel;
}

/** v1 (or hybrid unified) directory for `inner` in the hierarchy mounted at `mount`. */
export function v1Dir(mount: CgroupMount, inner: InnerPath, self: SelfCgroups, key: string): string {
  if (inner.absolute) return path.join(mount.mountpoint, inner.path);
  const own = key === '' ? self.unified : self.v1.get(key);
  const base = own === undefined ? '' : relativeToMount(mount.root, own);
  return path.join(mount.mountpoint, base, inner.path);
}

/** v2 directory: relative paths hang off the parent of our own cgroup (runc fs2 defaultDirPath). */
export function v2Dir(mount: CgroupMount, inner: InnerPath, self: SelfCgroups): string {
  if (inner.absolute) return path.join(mount.mountpoint, inner.path);
  const own = self.unified ?? '/';
  const base = relativeToMount(mount.root, path.posix.dirname(own));
  return path.join(mount.mountpoint, base, inner.path);
}
