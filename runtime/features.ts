// `vkernel features`: the OCI features document (runtime-spec features.md). What the
// vkernel layer can do on this host is reported under namespaced annotations (string
// values, so the document keeps the runc / runtime-spec shape):
//   org.opencontainers.vkernel.syscalls.modes     usable mechanisms, best first ("notify,ptrace,preload")
//   org.opencontainers.vkernel.syscalls.auto      what io.vkernel.mode=auto picks for a plain container
//   org.opencontainers.vkernel.syscalls.<mode>    "available" or "unavailable: <why>"
//   org.opencontainers.vkernel.view.mode          "fuse" or "snapshot" (no FUSE: files rewritten on update)
import * as fs from 'node:fs';
import { OCI_VERSION, VKERNEL_VERSION } from './paths';
import { DEFAULT_POLICY } from './vkernel/policy';
import { checkModes, LAYER_MODES, probeSyscallHost, selectSyscallMode, type SyscallProbe } from './vkernel/syscalls';
import { vkfsPath } from './vkernel/view';

const NS = 'org.opencontainers.vkernel';

/** The vkernel layer's annotations for the features document. */
export function vkernelFeatures(probe: SyscallProbe = probeSyscallHost(), fuse = fs.existsSync(vkfsPath()) && fs.existsSync('/dev/fuse')): Record<string, string> {
  const checks = checkModes(probe);
  const usable = LAYER_MODES.filter((m) => checks[m].ok);
  const out: Record<string, string> = {
    [`${NS}.syscalls.modes`]: usable.join(','),
    [`${NS}.syscalls.auto`]: selectSyscallMode(DEFAULT_POLICY, checks).modes[0] ?? 'off',
  };
  for (const m of LAYER_MODES) out[`${NS}.syscalls.${m}`] = checks[m].ok ? 'available' : `unavailable: ${checks[m].reason}`;
  out[`${NS}.view.mode`] = fuse ? 'fuse' : 'snapshot';
  return out;
}

export function features(capNames: string[]): Record<string, unknown> {
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: OCI_VERSION,
    hooks: ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts'],
      capabilities: capNames,
      cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
      // Whether vkernel implements them (features.md: decided at build time, not by the
      // host, as runc reports them). A profile or label the host cannot apply is refused
      // at create / exec (runtime/spec/validate.ts).
      apparmor: { enabled: true },
      selinux: { enabled: true },
    },
    annotations: {
      'org.opencontainers.vkernel.version': VKERNEL_VERSION,
      ...vkernelFeatures(),
    },
  };
}

const MOUNT_OPTIONS = [
  'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'mand', 'noatime', 'nodev',
  'nodiratime', 'noexec', 'nomand', 'norelatime', 'nostrictatime', 'nosuid', 'nosymfollow', 'private', 'rbind',
  'relatime', 'remount', 'ro', 'rprivate', 'rshared', 'rslave', 'runbindable', 'rw', 'shared', 'slave',
  'strictatime', 'suid', 'symfollow', 'sync', 'unbindable',
];
