// The base config.json for test bundles: `runc spec` (runc 1.1.5) output, with only
// these differences:
//   - ociVersion "1.0.2" (runc writes "1.0.2-dev", which crun rejects)
//   - process.terminal false (tests capture stdio through pipes)
//   - process.args ["/vktest", "echo", "hi"] (the payload; see test/payload/vktest.c)
// Everything else (caps, rlimits, noNewPrivileges, read-only root, hostname "runc",
// mounts, devices cgroup rule, namespaces, masked/readonly paths) is kept verbatim so
// results can be compared with runc and crun. makeBundle() applies its own options on top.

import type { Spec } from '../../runtime/spec/types';

export const DEFAULT_ARGS: readonly string[] = ['/vktest', 'echo', 'hi'];

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

const BASE_SPEC: Spec = {
  ociVersion: '1.0.2',
  process: {
    terminal: false,
    user: { uid: 0, gid: 0 },
    args: [...DEFAULT_ARGS],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
    cwd: '/',
    capabilities: {
      bounding: [...DEFAULT_CAPS],
      effective: [...DEFAULT_CAPS],
      permitted: [...DEFAULT_CAPS],
      ambient: [...DEFAULT_CAPS],
    },
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    noNewPrivileges: true,
  },
  root: { path: 'rootfs', readonly: true },
  hostname: 'runc',
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ],
  linux: {
    resources: { devices: [{ allow: false, access: 'rwm' }] },
    namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
    maskedPaths: [
      '/proc/acpi',
      '/proc/asound',
      '/proc/kcore',
      '/proc/keys',
      '/proc/latency_stats',
      '/proc/timer_list',
      '/proc/timer_stats',
      '/proc/sched_debug',
      '/sys/firmware',
      '/proc/scsi',
    ],
    readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
  },
};

/** A fresh deep copy of the base spec (safe to mutate). */
export function baseSpec(): Spec {
  return structuredClone(BASE_SPEC);
}
