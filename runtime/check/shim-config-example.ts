// `vkernel containerd-config --shim-config`: an example of the shim's own config file
// (/etc/vkernel/config.toml, the runtime entry's ConfigPath), written with smol-toml plus a
// comment per key.
import { DEFAULT_SHIM_CONFIG, type ShimProtocolSetting } from '../../shim/config';
import { DEFAULT_VKERNEL_CONFIG } from './containerd-config';
import { toml } from './toml';

/**
 * [shim] keys of shim/config.ts (its KEYS table is private) with a one-line explanation. A key
 * whose field the shim does not have (yet) is left out; the unit test fails when a shim
 * setting is missing here or does not parse back to its default.
 */
const SHIM_KEYS: ReadonlyArray<[key: string, field: string, why: string]> = [
  ['protocol', 'protocol', '"auto" (negotiated per containerd), "grpc" or "ttrpc"; docs/protocol.md'],
  ['debug', 'debug', 'debug lines in the shim log'],
  ['no_pivot_root', 'noPivotRoot', 'runc --no-pivot'],
  ['no_new_keyring', 'noNewKeyring', 'runc --no-new-keyring'],
  ['systemd_cgroup', 'systemdCgroup', "cgroupsPath is systemd's slice:prefix:name"],
  ['oom_poll_interval_ms', 'oomPollIntervalMs', 'how often the OOM counters are read'],
  ['io_drain_timeout_ms', 'ioDrainTimeoutMs', 'how long Delete waits for stdio copying to finish'],
  ['grpc_keepalive_interval_ms', 'grpcKeepAliveIntervalMs', 'gRPC mode: how often containerd is made to call State (0 = never)'],
  ['idle_exit_ms', 'idleExitMs', 'a daemon with no container and no connection for this long exits (0 = never)'],
  ['shim_cgroup', 'shimCgroup', "cgroup a new group daemon joins (must exist), as runc's ShimCgroup; \"\" = containerd's"],
];

/** An example /etc/vkernel/config.toml: the defaults, with `protocol` if given. */
export function shimConfigExample(protocol?: ShimProtocolSetting): string {
  const values: Record<string, unknown> = { ...DEFAULT_SHIM_CONFIG, ...(protocol ? { protocol } : {}) };
  const known = SHIM_KEYS.filter(([, field]) => field in values);
  const shim = Object.fromEntries(known.map(([key, field]) => [key, values[field]]));
  const comments = new Map(known.map(([key, , why]) => [key, why]));
  const body = toml()
    .stringify({ shim })
    .split('\n')
    .map((line) => {
      const why = comments.get(line.split(' = ')[0]);
      return why ? `${line}  # ${why}` : line;
    });
  return `# vkernel shim config (${DEFAULT_VKERNEL_CONFIG}; the runtime entry's ConfigPath): the defaults${protocol ? `, protocol = "${protocol}"` : ''}\n${body.join('\n')}`;
}
