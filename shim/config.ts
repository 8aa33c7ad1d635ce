// The shim's settings, from a TOML file. Which file: the ConfigPath of the runtime options
// containerd sends with Create (runtimeoptions.v1.Options, what CRI and `ctr
// --runtime-config-path` send), else the daemon's configPath, else /etc/vkernel/config.toml.
// containerd 1.7+ sends the whole CRI `options` table as config_body when ConfigPath is
// empty; that body is TOML too and is read the same way. containerd.runc.v1.Options (what
// runc-minded clients send) is tolerated and its meaningful fields are honoured; any
// other type is ignored. A missing default file means defaults; a missing explicit one is an
// error. The file may hold other tables (the CLI's): only [shim] is read here.
//
//   [shim]
//   debug = false                 # debug lines in the shim log
//   no_pivot_root = false         # runc --no-pivot
//   no_new_keyring = false        # runc --no-new-keyring
//   systemd_cgroup = false        # cgroupsPath is systemd's slice:prefix:name
//   oom_poll_interval_ms = 250    # how often the OOM counters are read
//   io_drain_timeout_ms = 2000    # how long Delete waits for stdio copying to finish
//   protocol = "auto"             # shim protocol: "auto" (negotiated), "grpc" or "ttrpc" (docs/protocol.md)
//   grpc_keepalive_interval_ms = 300000  # gRPC mode: how often containerd is made to call State (0 = never)
//   shim_cgroup = ""              # cgroup a new group daemon joins (must exist), as runc's ShimCgroup
//   idle_exit_ms = 120000         # a daemon with no container and no connection for this long exits (0 = never)
//
// `start` reads this file too (protocol, grpc_keepalive_interval_ms, idle_exit_ms, shim_cgroup), so the protobuf codec is
// loaded only when runtime options have to be decoded.
import * as fs from 'node:fs';
import { InternalError, InvalidArgumentError } from '../runtime/errors';
import type * as ProtoModule from './proto';
import type { Any, ProtoInput } from './proto';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const proto = (): typeof ProtoModule => require('./proto') as typeof ProtoModule;

export const DEFAULT_CONFIG_PATH = '/etc/vkernel/config.toml';

export interface ShimConfig {
  debug: boolean;
  noPivotRoot: boolean;
  noNewKeyring: boolean;
  systemdCgroup: boolean;
  oomPollIntervalMs: number;
  ioDrainTimeoutMs: number;
  /** The shim protocol: negotiated with containerd ("auto"), or forced. */
  protocol: ShimProtocolSetting;
  /** gRPC mode: interval of the keep-alive that makes containerd call State (0 = off). */
  grpcKeepAliveIntervalMs: number;
  /** A daemon left with no container and no connection this long exits (0 = never). */
  idleExitMs: number;
  /** The cgroup a new group daemon joins ('' = stay in containerd's), as runc's ShimCgroup. */
  shimCgroup: string;
}

export type ShimProtocolSetting = 'auto' | 'grpc' | 'ttrpc';
export const SHIM_PROTOCOL_SETTINGS: readonly ShimProtocolSetting[] = ['auto', 'grpc', 'ttrpc'];

/**
 * containerd follows every `start` with a connection and Create within its own timeouts, and
 * with Shutdown after the last Delete; a daemon idle this long was orphaned (containerd died
 * between start and Create, or never sent Shutdown) and would otherwise live forever.
 */
export const DEFAULT_IDLE_EXIT_MS = 2 * 60_000;

/** Under containerd 1.7's 30-minute idle teardown of gRPC shims with a wide margin. */
export const DEFAULT_GRPC_KEEPALIVE_INTERVAL_MS = 5 * 60_000;

export const DEFAULT_SHIM_CONFIG: Readonly<ShimConfig> = Object.freeze({
  debug: false,
  noPivotRoot: false,
  noNewKeyring: false,
  systemdCgroup: false,
  oomPollIntervalMs: 250,
  ioDrainTimeoutMs: 2000,
  protocol: 'auto',
  grpcKeepAliveIntervalMs: DEFAULT_GRPC_KEEPALIVE_INTERVAL_MS,
  idleExitMs: DEFAULT_IDLE_EXIT_MS,
  shimCgroup: '',
});

export interface ShimConfigKey {
  field: keyof ShimConfig;
  type: 'boolean' | 'number' | 'protocol' | 'string';
  /** One line for humans (`vkernel containerd-config --shim-config` prints it). */
  doc: string;
}

/** [shim] TOML key → field, the type each must have, and what it does. */
export const SHIM_CONFIG_KEYS: Readonly<Record<string, ShimConfigKey>> = {
  protocol: { field: 'protocol', type: 'protocol', doc: '"auto" (negotiated per containerd), "grpc" or "ttrpc"; docs/protocol.md' },
  debug: { field: 'debug', type: 'boolean', doc: 'debug lines in the shim log' },
  no_pivot_root: { field: 'noPivotRoot', type: 'boolean', doc: 'runc --no-pivot' },
  no_new_keyring: { field: 'noNewKeyring', type: 'boolean', doc: 'runc --no-new-keyring' },
  systemd_cgroup: { field: 'systemdCgroup', type: 'boolean', doc: "cgroupsPath is systemd's slice:prefix:name" },
  oom_poll_interval_ms: { field: 'oomPollIntervalMs', type: 'number', doc: 'how often the OOM counters are read where no OOM event exists' },
  io_drain_timeout_ms: { field: 'ioDrainTimeoutMs', type: 'number', doc: 'how long Delete waits for stdio copying to finish' },
  grpc_keepalive_interval_ms: { field: 'grpcKeepAliveIntervalMs', type: 'number', doc: 'gRPC mode: how often containerd is made to call State (0 = never)' },
  idle_exit_ms: { field: 'idleExitMs', type: 'number', doc: 'a daemon with no container and no connection for this long exits (0 = never)' },
  shim_cgroup: { field: 'shimCgroup', type: 'string', doc: "cgroup a new group daemon joins (must exist), as runc's ShimCgroup; \"\" = containerd's" },
};
const KEYS = SHIM_CONFIG_KEYS;

type TomlParse = (text: string) => Record<string, unknown>;

/** smol-toml's parse, loaded on first use (only hosts with a config file pay for it). */
function tomlParse(): TomlParse {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('smol-toml') as { parse: TomlParse }).parse;
  } catch (err) {
    throw new InternalError('reading the shim config needs the smol-toml package (npm dependency)', { cause: err });
  }
}

/** Parses config text; `where` names the source in errors. Unknown [shim] keys are reported through warn. */
export function parseShimConfig(text: string, where: string, warn: (m: string) => void = () => undefined): ShimConfig {
  let doc: Record<string, unknown>;
  try {
    doc = tomlParse()(text);
  } catch (err) {
    if (err instanceof InternalError) throw err;
    throw new InvalidArgumentError(`${where}: invalid TOML: ${(err as Error).message}`, where, { cause: err });
  }
  const out: ShimConfig = { ...DEFAULT_SHIM_CONFIG };
  const table = doc.shim;
  if (table === undefined) return out;
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    throw new InvalidArgumentError(`${where}: shim: must be a table`, 'shim');
  }
  for (const [key, value] of Object.entries(table)) {
    const spec = KEYS[key];
    if (!spec) {
      warn(`${where}: shim.${key}: unknown setting, ignored`);
      continue;
    }
    const v = typeof value === 'bigint' ? Number(value) : value;
    if (spec.type === 'protocol') {
      if (typeof v !== 'string' || !(SHIM_PROTOCOL_SETTINGS as readonly string[]).includes(v)) {
        throw new InvalidArgumentError(`${where}: shim.${key}: must be one of ${SHIM_PROTOCOL_SETTINGS.map((x) => `"${x}"`).join(', ')} (got ${JSON.stringify(String(value))})`, `shim.${key}`);
      }
      (out as unknown as Record<string, unknown>)[spec.field] = v;
      continue;
    }
    if (spec.type === 'string') {
      if (typeof v !== 'string') throw new InvalidArgumentError(`${where}: shim.${key}: must be a string (got ${JSON.stringify(String(value))})`, `shim.${key}`);
      (out as unknown as Record<string, unknown>)[spec.field] = v;
      continue;
    }
    if (typeof v !== spec.type || (spec.type === 'number' && (!Number.isFinite(v as number) || (v as number) < 0))) {
      throw new InvalidArgumentError(`${where}: shim.${key}: must be a ${spec.type === 'number' ? 'non-negative number' : 'boolean'} (got ${JSON.stringify(String(value))})`, `shim.${key}`);
    }
    (out as unknown as Record<string, unknown>)[spec.field] = v;
  }
  return out;
}

export interface ResolvedConfig {
  config: ShimConfig;
  /** Where it came from: a path, "config_body", or "defaults". */
  source: string;
}

/**
 * The config for one Create: from the request's options Any (see the file header), else
 * `fallbackPath` (the daemon's configPath), else the default path.
 */
export function resolveShimConfig(
  options: ProtoInput<Any> | null | undefined,
  fallbackPath?: string,
  warn: (m: string) => void = () => undefined,
): ResolvedConfig {
  let explicitPath: string | undefined;
  let overrides: Partial<ShimConfig> = {};
  const typeName = options?.type_url ? proto().anyTypeName(options.type_url) : '';
  const value = options?.value ?? Buffer.alloc(0);
  if (typeName === 'runtimeoptions.v1.Options') {
    const o = proto().decode('runtimeoptions.v1.Options', value);
    if (o.config_path) explicitPath = o.config_path;
    else if (o.config_body && o.config_body.length > 0) {
      return { config: parseShimConfig(Buffer.from(o.config_body).toString('utf8'), 'config_body', warn), source: 'config_body' };
    }
  } else if (typeName === 'containerd.runc.v1.Options') {
    const o = proto().decode('containerd.runc.v1.Options', value);
    overrides = {
      ...(o.no_pivot_root ? { noPivotRoot: true } : {}),
      ...(o.no_new_keyring ? { noNewKeyring: true } : {}),
      ...(o.systemd_cgroup ? { systemdCgroup: true } : {}),
      ...(o.shim_cgroup ? { shimCgroup: o.shim_cgroup } : {}),
    };
  } else if (typeName) {
    warn(`runtime options of type ${typeName} are not understood, ignored`);
  }
  const file = explicitPath ?? fallbackPath ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicitPath) return { config: { ...DEFAULT_SHIM_CONFIG, ...overrides }, source: 'defaults' };
    throw new InvalidArgumentError(`config file ${file}: ${(err as Error).message}`, 'ConfigPath', { cause: err });
  }
  return { config: { ...parseShimConfig(text, file, warn), ...overrides }, source: file };
}
