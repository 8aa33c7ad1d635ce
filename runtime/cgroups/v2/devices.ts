// v2 devices. cgroup v2 has no devices.allow/deny: device access is decided by an eBPF
// program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup directory. Loading one needs
// the bpf(2) syscall, which Node cannot make without a native helper. This module is the
// plug point: give the v2 manager a DeviceProgramLoader and it is called with the
// container's effective rules (user rules, then runc's defaults, in order — the same list
// the v1 driver writes); without one, device rules fail with NotImplementedError (or are
// skipped entirely with the manager's skipDevices option, like runc's SkipDevices).

import { NotImplementedError } from '../../errors';
import type { DeviceRule } from '../device-rules';

export interface DeviceProgramLoader {
  /**
   * Enforce `rules` on the cgroup at `dir`: generate the program (runc devicefilter
   * semantics: rules evaluated last-match-wins over a deny-all or allow-all default, as
   * DeviceEmulator models), BPF_PROG_LOAD it, BPF_PROG_ATTACH it to the directory fd with
   * BPF_F_ALLOW_MULTI, then detach the programs that were there before (BPF_PROG_QUERY), so
   * there is never a moment without a program.
   */
  apply(dir: string, rules: DeviceRule[]): Promise<void>;
}

export const V2_DEVICES_MISSING =
  'linux.resources.devices: cgroup v2 device rules need an eBPF device program, which needs a native helper that is not there yet ' +
  '(missing: the rule-to-BPF_PROG_TYPE_CGROUP_DEVICE compiler, bpf(2) BPF_PROG_LOAD/BPF_PROG_ATTACH/BPF_PROG_QUERY/BPF_PROG_DETACH ' +
  'on the cgroup directory fd, and replacing the previous program without a gap); run with skipDevices to start without device confinement';

export async function applyDevicesV2(dir: string, rules: DeviceRule[], loader: DeviceProgramLoader | undefined): Promise<void> {
  if (!loader) throw new NotImplementedError(V2_DEVICES_MISSING);
  await loader.apply(dir, rules);
}
