// Rows about the machine: kernel, cgroups, seccomp, FUSE, overlayfs, user namespaces and the
// native helpers. Each `*Row` function is pure (facts in, row out); hostRows() gathers the
// facts through the probe. Status policy (docs/containerd.md): fail when vkernel cannot run a
// typical container, warn when a feature is degraded or off.
import { detectCgroupSetup } from '../cgroups/manager';
import { parseCgroupMounts } from '../cgroups/host';
import { BUILD_HINT, missingHelperFix } from '../paths';
import {
  SCMP_ACT_NOTIFY,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
} from '../seccomp/constants';
import type { SeccompProbe } from '../seccomp/compile';
import type { CheckProbe, HelperPaths, RunResult } from './probe';
import { row, type CheckRow } from './report';

/** seccomp user notification (SECCOMP_RET_USER_NOTIF, NEW_LISTENER) arrived in 5.0. */
export const MIN_KERNEL = [5, 0] as const;
/** Everything used is there from 5.19 on (WAIT_KILLABLE_RECV; clone3, pidfd_open, openat2, close_range earlier). */
export const RECOMMENDED_KERNEL = [5, 19] as const;

const atLeast = (v: [number, number], min: readonly [number, number]): boolean => v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);

export function kernelRow(release: string | undefined): CheckRow {
  const m = /^(\d+)\.(\d+)/.exec((release ?? '').trim());
  if (!m) return row('kernel', 'warn', `cannot read the kernel release (${JSON.stringify(release ?? '')})`);
  const v: [number, number] = [Number(m[1]), Number(m[2])];
  const r = release!.trim();
  if (!atLeast(v, MIN_KERNEL)) return row('kernel', 'fail', `${r}: older than ${MIN_KERNEL.join('.')} (no seccomp user notification)`);
  if (!atLeast(v, RECOMMENDED_KERNEL)) {
    return row('kernel', 'warn', `${r}: older than ${RECOMMENDED_KERNEL.join('.')}; some features are missing (see the seccomp rows)`);
  }
  return row('kernel', 'pass', r);
}

/**
 * Controllers a container's resources need: v1 hierarchy names, v2 cgroup.controllers names.
 * Not freezer: pause falls back to cgroup.freeze in a hybrid host's unified tree.
 */
const REQUIRED_V1 = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'devices'];
const REQUIRED_V2 = ['cpu', 'cpuset', 'memory', 'pids'];

/**
 * cgroup mode and controllers. `v2Controllers(mountpoint)` is that hierarchy's
 * cgroup.controllers text. Pure v2 needs cpu, cpuset, memory and pids enabled at the root;
 * device rules go to an eBPF program (runtime/cgroups/v2/devicefilter.ts), no controller.
 */
export function cgroupRow(mountinfo: string, v2Controllers: (mountpoint: string) => string | undefined, root = '/sys/fs/cgroup'): CheckRow {
  let mode: 'legacy' | 'hybrid' | 'unified';
  try {
    mode = detectCgroupSetup(root, mountinfo);
  } catch (err) {
    return row('cgroups', 'fail', (err as Error).message);
  }
  const mounts = parseCgroupMounts(mountinfo).filter((m) => m.mountpoint === root || m.mountpoint.startsWith(root + '/'));
  const v1 = [...new Set(mounts.filter((m) => m.fstype === 'cgroup').flatMap((m) => m.controllers.filter((c) => !c.startsWith('name='))))].sort();
  const v2 = mounts
    .filter((m) => m.fstype === 'cgroup2')
    .map((m) => ({ at: m.mountpoint, controllers: (v2Controllers(m.mountpoint) ?? '').trim().split(/\s+/).filter(Boolean) }));
  const parts = [`${mode === 'legacy' ? 'v1' : mode === 'unified' ? 'v2' : 'hybrid'}`];
  if (v1.length) parts.push(`v1: ${v1.join(',')}`);
  for (const h of v2) parts.push(`v2 ${h.at}: ${h.controllers.join(',') || '(none)'}`);
  const detail = parts.join('; ');
  if (mode === 'unified') {
    const missing = REQUIRED_V2.filter((c) => !v2[0]?.controllers.includes(c));
    if (missing.length) return row('cgroups', 'fail', `${detail}; missing v2 controllers: ${missing.join(',')}`);
    return row('cgroups', 'pass', `${detail}; device rules as an eBPF program`);
  }
  const missing = REQUIRED_V1.filter((c) => !v1.includes(c));
  if (missing.length) return row('cgroups', 'fail', `${detail}; missing v1 controllers: ${missing.join(',')}`);
  return row('cgroups', 'pass', detail);
}

const ACTION_NAMES: Record<number, string> = {
  0x80000000: 'kill_process',
  0x00000000: 'kill_thread',
  0x00030000: 'trap',
  0x00050000: 'errno',
  [SCMP_ACT_NOTIFY]: 'user_notif',
  0x7ff00000: 'trace',
  0x7ffc0000: 'log',
  0x7fff0000: 'allow',
};

/** Three rows from one `vkseccomp --probe` (or the reason it could not run). */
export function seccompRows(probe: SeccompProbe | Error): CheckRow[] {
  if (probe instanceof Error) {
    const why = `not probed: ${probe.message}`;
    return [row('seccomp', 'fail', probe.message), row('seccomp-notify', 'warn', why), row('seccomp-wait-killable-recv', 'warn', why)];
  }
  const actions = probe.actions.map((a) => ACTION_NAMES[a >>> 0] ?? `0x${(a >>> 0).toString(16)}`);
  const base = row('seccomp', 'pass', `actions ${actions.join(',')}; filter flags 0x${probe.flags.toString(16)}; libseccomp ${probe.libseccomp}`);
  const listener = (probe.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) !== 0;
  const notif = probe.actions.includes(SCMP_ACT_NOTIFY);
  const notify =
    listener && notif
      ? row('seccomp-notify', 'pass', 'SECCOMP_RET_USER_NOTIF and SECCOMP_FILTER_FLAG_NEW_LISTENER accepted')
      : row(
          'seccomp-notify',
          'warn',
          `${[!notif && 'SECCOMP_RET_USER_NOTIF', !listener && 'SECCOMP_FILTER_FLAG_NEW_LISTENER'].filter(Boolean).join(' and ')} refused: ` +
            'no vkernel syscall layer (sysinfo, sched_getaffinity) and no SCMP_ACT_NOTIFY profiles',
        );
  const killable =
    (probe.flags & SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) !== 0
      ? row('seccomp-wait-killable-recv', 'pass', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV accepted')
      : row('seccomp-wait-killable-recv', 'warn', 'refused (kernel < 5.19): vkinit drops the flag, so a signal can interrupt a notified syscall');
  return [base, notify, killable];
}

export interface FuseFacts {
  /** `vkfs probe`, or undefined when vkfs is not built. */
  vkfs?: RunResult;
  devFuse: boolean;
  /** fusermount3 on PATH (only non-root mounts need it). */
  fusermount?: string;
}

export function fuseRow(f: FuseFacts, fix = BUILD_HINT): CheckRow {
  const helper = f.fusermount ? `; fusermount3 at ${f.fusermount}` : '; no fusermount3 (root mounts need none)';
  const fallback = 'views fall back to snapshot files, refreshed on update, not at read time';
  if (!f.vkfs) return row('fuse', f.devFuse ? 'warn' : 'fail', `vkfs is missing (${fix})${f.devFuse ? '; /dev/fuse exists' : ''}`);
  const out = f.vkfs.stdout.trim();
  if (f.vkfs.code === 0 && out === 'fuse ok') return row('fuse', 'pass', `/dev/fuse opens; vkfs runs (libfuse3 loads)${helper}`);
  if (f.vkfs.code === 1 && out.startsWith('fuse unavailable')) return row('fuse', 'warn', `${out}: ${fallback}`);
  // vkfs itself did not run (e.g. libfuse3.so.3 missing): no view at all, snapshot mode needs it too.
  const why = f.vkfs.error ?? (f.vkfs.stderr.trim().split('\n')[0] || `exit ${f.vkfs.code}`);
  return row('fuse', 'fail', `vkfs probe failed: ${why}`);
}

export function overlayRow(filesystems: string | undefined, moduleDir: boolean): CheckRow {
  const listed = (filesystems ?? '').split('\n').some((l) => l.trim().split(/\s+/).pop() === 'overlay');
  if (listed) return row('overlayfs', 'pass', 'overlay in /proc/filesystems');
  if (moduleDir) return row('overlayfs', 'pass', 'overlay module present (loaded on first mount)');
  return row('overlayfs', 'warn', "not available: containerd's overlayfs snapshotter needs it (vkernel itself does not)");
}

export function userNamespaceRow(nsFile: boolean, maxUserNamespaces: string | undefined): CheckRow {
  if (!nsFile) return row('user-namespaces', 'warn', 'kernel without user namespaces: specs with a user namespace fail');
  const max = Number((maxUserNamespaces ?? '').trim());
  if (maxUserNamespaces !== undefined && max === 0) {
    return row('user-namespaces', 'warn', 'disabled (user.max_user_namespaces = 0): specs with a user namespace fail');
  }
  return row('user-namespaces', 'pass', `available (user.max_user_namespaces = ${Number.isFinite(max) && maxUserNamespaces !== undefined ? max : 'unknown'})`);
}

/** The launcher is only needed under containerd; the rest by every container. */
const OPTIONAL_HELPERS: ReadonlyArray<keyof HelperPaths> = ['launcher'];

export function helpersRow(paths: HelperPaths, present: (role: keyof HelperPaths) => boolean, fix = BUILD_HINT): CheckRow {
  const missing = (Object.keys(paths) as Array<keyof HelperPaths>).filter((k) => !present(k));
  const needed = missing.filter((k) => !OPTIONAL_HELPERS.includes(k));
  const names = (ks: Array<keyof HelperPaths>): string => ks.map((k) => paths[k]).join(', ');
  if (needed.length) return row('native-helpers', 'fail', `missing: ${names(needed)} (${fix})`);
  if (missing.length) return row('native-helpers', 'warn', `missing: ${names(missing)} (the containerd shim needs it; ${fix})`);
  return row('native-helpers', 'pass', `vkinit, vkseccomp, vknative.node, vkfs, vkagent, containerd-shim-vkernel-v2 built (${paths.vkinit.replace(/\/[^/]+$/, '')})`);
}

/** The first `name` in a PATH string. */
export function lookPath(name: string, pathEnv: string, executable: (file: string) => boolean): string | undefined {
  for (const dir of pathEnv.split(':')) if (dir && executable(`${dir}/${name}`)) return `${dir}/${name}`;
  return undefined;
}

export async function hostRows(p: CheckProbe): Promise<CheckRow[]> {
  const release = p.readFile('/proc/sys/kernel/osrelease')?.trim();
  const h = p.helpers();
  const seccomp = await p.seccomp().catch((err: Error) => err);
  const vkfs = p.executable(h.vkfs) ? await p.run(h.vkfs, ['probe']) : undefined;
  const fix = missingHelperFix(p.installed?.() ?? false);
  return [
    kernelRow(release),
    cgroupRow(p.readFile('/proc/self/mountinfo') ?? '', (mp) => p.readFile(`${mp}/cgroup.controllers`)),
    ...seccompRows(seccomp),
    fuseRow({ vkfs, devFuse: p.exists('/dev/fuse'), fusermount: lookPath('fusermount3', p.envPath(), p.executable) }, fix),
    overlayRow(p.readFile('/proc/filesystems'), p.exists(`/lib/modules/${release}/kernel/fs/overlayfs`)),
    userNamespaceRow(p.exists('/proc/self/ns/user'), p.readFile('/proc/sys/user/max_user_namespaces')),
    helpersRow(h, (k) => (k === 'vknative' ? p.exists(h[k]) : p.executable(h[k])), fix),
  ];
}
