// `vkernel features`: the OCI features document (runtime-spec features.md).
import { OCI_VERSION, VKERNEL_VERSION } from './paths';

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
      apparmor: { enabled: false },
      selinux: { enabled: false },
    },
    annotations: {
      'org.opencontainers.vkernel.version': VKERNEL_VERSION,
    },
  };
}

const MOUNT_OPTIONS = [
  'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'mand', 'noatime', 'nodev',
  'nodiratime', 'noexec', 'nomand', 'norelatime', 'nostrictatime', 'nosuid', 'nosymfollow', 'private', 'rbind',
  'relatime', 'remount', 'ro', 'rprivate', 'rshared', 'rslave', 'runbindable', 'rw', 'shared', 'slave',
  'strictatime', 'suid', 'symfollow', 'sync', 'unbindable',
];
