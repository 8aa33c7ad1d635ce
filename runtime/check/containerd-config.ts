// `vkernel containerd-config`: the runtime entry containerd's CRI plugin needs for vkernel,
// in the config format of the containerd version at hand, and an example shim config
// (/etc/vkernel/config.toml). Built as objects and written with smol-toml; only the comment
// lines above the tables are text, since TOML libraries do not write comments.
//
// `ctr run --runtime io.containerd.vkernel.v2` needs no entry (containerd maps the runtime
// type to the binary containerd-shim-vkernel-v2 on its PATH); CRI (Kubernetes) does, and CRI
// passes a container only the annotations its runtime entry allow-lists, hence
// pod_annotations/container_annotations = ["io.vkernel.*"] for the io.vkernel.* policy.
// The shim config example (--shim-config) is in shim-config-example.ts.
import { execFileSync } from 'node:child_process';
import { InvalidArgumentError, UnavailableError } from '../errors';
import type { ShimProtocolSetting } from '../../shim/config';
import { decideProtocol, lookupContainerdVersion, parseContainerdVersion, type ContainerdVersion } from '../../shim/bootstrap/negotiate';
import { realProbe, type CheckProbe } from './probe';
import { tableAt, toml } from './toml';

export const RUNTIME_TYPE = 'io.containerd.vkernel.v2';
export const RUNTIME_NAME = 'vkernel';
export const ANNOTATION_PATTERN = 'io.vkernel.*';
export const DEFAULT_VKERNEL_CONFIG = '/etc/vkernel/config.toml';
export const DEFAULT_ADDRESS = '/run/containerd/containerd.sock';
export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml';

export type ConfigFamily = '1.6' | '1.7' | '2.x';

/** Where each containerd config version keeps CRI's runtimes table (below `plugins`). */
export const CRI_RUNTIMES_PATH: Readonly<Record<1 | 2 | 3, readonly string[]>> = {
  1: ['cri', 'containerd', 'runtimes'],
  2: ['io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  3: ['io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
};

/** What a containerd config file says about CRI's runtimes. */
export interface CriRuntimes {
  /** The file's config version (1 when it names none, as containerd reads it). */
  version: number;
  /** plugins.<path> of the runtimes table for that version; undefined for an unknown version. */
  where?: readonly string[];
  /** The runtimes table the file writes (empty: containerd's built-in one, which has runc). */
  runtimes: Record<string, unknown>;
  /** default_runtime_name (containerd's default: runc). */
  defaultName: string;
  /** The CRI plugin is in disabled_plugins. */
  disabled: boolean;
}

/** Reads a parsed containerd config (throws nothing; missing parts read as defaults). */
export function criRuntimes(doc: Record<string, unknown>): CriRuntimes {
  const version = typeof doc.version === 'number' || typeof doc.version === 'bigint' ? Number(doc.version) : 1;
  const where = CRI_RUNTIMES_PATH[version as 1 | 2 | 3] as readonly string[] | undefined;
  const containerd = where ? tableAt(doc, ['plugins', ...where.slice(0, -1)]) : undefined;
  const name = containerd?.default_runtime_name;
  return {
    version,
    where,
    runtimes: where ? (tableAt(doc, ['plugins', ...where]) ?? {}) : {},
    defaultName: typeof name === 'string' && name ? name : 'runc',
    disabled: Array.isArray(doc.disabled_plugins) && !!where && doc.disabled_plugins.some((p) => p === where[0] || p === 'cri'),
  };
}

/**
 * A runtimes table in the file REPLACES containerd's built-in one (which holds runc), and CRI
 * refuses to load when default_runtime_name has no entry ("no corresponding runtime
 * configured in containerd.runtimes"). So when the file has no runc entry, the snippet must
 * bring one. A file that cannot be read or parsed counts as having none.
 */
export const DEFAULT_RUNTIME_NAME = 'runc';
const DEFAULT_RUNTIME_ENTRY = { runtime_type: 'io.containerd.runc.v2' };

export function needsDefaultRuntime(configText: string | undefined): boolean {
  if (configText === undefined) return true;
  let doc: Record<string, unknown>;
  try {
    doc = toml().parse(configText);
  } catch {
    return true;
  }
  const c = criRuntimes(doc);
  return c.defaultName === DEFAULT_RUNTIME_NAME && !(DEFAULT_RUNTIME_NAME in c.runtimes);
}

export function familyOf(v: ContainerdVersion): ConfigFamily | undefined {
  if (v.major === 2) return '2.x';
  if (v.major === 1 && v.minor === 7) return '1.7';
  if (v.major === 1 && v.minor === 6) return '1.6';
  return undefined;
}

/** The config file version each family writes: 2 for 1.6/1.7, 3 for 2.x. */
export function configVersionOf(family: ConfigFamily): 2 | 3 {
  return family === '2.x' ? 3 : 2;
}

/** `--version` text → the version (MAJOR.MINOR[.PATCH]); bad or unsupported values name the flag. */
export function parseVersionFlag(text: string): ContainerdVersion {
  const v = /^v?\d+\.\d+(\.\d+)?$/.test(text.trim()) ? parseContainerdVersion(text) : undefined;
  if (!v) throw new InvalidArgumentError(`--version: must be MAJOR.MINOR, e.g. 1.7 (got ${JSON.stringify(text)})`, 'version');
  if (!familyOf(v)) throw new InvalidArgumentError(`--version: containerd ${v.text} is not supported (1.6, 1.7 or 2.x) (got ${JSON.stringify(text)})`, 'version');
  return v;
}

export interface SnippetOptions {
  containerd: ContainerdVersion;
  /** Where the version came from, for the header ("--version", "containerd at /run/…"). */
  source?: string;
  /** ConfigPath in the runtime options (default /etc/vkernel/config.toml). */
  configPath?: string;
  /** A forced shim protocol: noted in the header (it is set in the shim config, not here). */
  protocol?: ShimProtocolSetting;
  /** Also write runtimes.runc (see needsDefaultRuntime); the name of the config file that lacks it. */
  addDefaultRuntime?: string;
}

/** The runtime table, as an object (what the snippet and the tests compare against). */
export function runtimeEntry(configPath: string = DEFAULT_VKERNEL_CONFIG): Record<string, unknown> {
  return {
    runtime_type: RUNTIME_TYPE,
    pod_annotations: [ANNOTATION_PATTERN],
    container_annotations: [ANNOTATION_PATTERN],
    options: { ConfigPath: configPath },
  };
}

/** The document the snippet holds: plugins.<CRI runtimes>.vkernel = runtimeEntry() (and runc). */
export function snippetDocument(family: ConfigFamily, configPath?: string, addDefaultRuntime = false): Record<string, unknown> {
  const [plugin, ...rest] = CRI_RUNTIMES_PATH[configVersionOf(family)];
  let table: Record<string, unknown> = {
    ...(addDefaultRuntime ? { [DEFAULT_RUNTIME_NAME]: DEFAULT_RUNTIME_ENTRY } : {}),
    [RUNTIME_NAME]: runtimeEntry(configPath),
  };
  for (const k of [...rest].reverse()) table = { [k]: table };
  return { plugins: { [plugin]: table } };
}

/** Which protocol this containerd gets from the shim and why, as comment lines. */
function protocolComment(v: ContainerdVersion, forced?: ShimProtocolSetting): string[] {
  const force = forced && forced !== 'auto' ? { protocol: forced, source: 'config' as const } : undefined;
  const choice = decideProtocol({ containerd: v, versionSource: 'unknown', bootstrapParams: false, force });
  const lines = [`# shim protocol: ${choice.protocol} (${choice.decidedBy === 'negotiated' ? 'negotiated' : 'forced'}); see docs/protocol.md`];
  if (force) lines.push(`# forced with [shim] protocol = "${forced}" in the shim config (vkernel containerd-config --shim-config --protocol ${forced})`);
  for (const w of choice.warnings) lines.push(`# warning: ${w}`);
  return lines;
}

export function containerdSnippet(o: SnippetOptions): string {
  const family = familyOf(o.containerd);
  if (!family) throw new InvalidArgumentError(`containerd ${o.containerd.text} is not supported (1.6, 1.7 or 2.x)`, 'version');
  const version = configVersionOf(family);
  const header = [
    `# vkernel runtime for containerd ${o.containerd.text}${o.source ? ` (${o.source})` : ''}: add to containerd's config.toml,`,
    `# which must say version = ${version} at the top; then restart containerd.`,
    ...protocolComment(o.containerd, o.protocol),
  ];
  if (o.addDefaultRuntime !== undefined) {
    header.push(
      `# runtimes.runc is included because ${o.addDefaultRuntime} has none: a runtimes table replaces containerd's`,
      '# built-in one, and CRI does not load without an entry for default_runtime_name ("runc").',
    );
  }
  return `${header.join('\n')}\n${toml().stringify(snippetDocument(family, o.configPath, o.addDefaultRuntime !== undefined))}`;
}

// ---- the local containerd ------------------------------------------------------------

export interface LocalSnippetOptions {
  /** --version; default: ask the containerd at `address`, else `containerd --version`. */
  version?: string;
  address: string;
  configPath?: string;
  protocol?: ShimProtocolSetting;
  /** The containerd config the snippet goes into; default: that of the containerd at `address`, else /etc/containerd/config.toml. */
  containerdConfig?: string;
}

/** The snippet for the local containerd: its version, and runc added when its config needs it. */
export async function localSnippet(o: LocalSnippetOptions, probe: CheckProbe = realProbe()): Promise<string> {
  const local = o.version !== undefined ? { version: parseVersionFlag(o.version), source: '--version' } : await localContainerdVersion(o.address);
  const file = o.containerdConfig ?? probe.containerdProcess(o.address)?.configFile ?? DEFAULT_CONTAINERD_CONFIG;
  return containerdSnippet({
    containerd: local.version,
    source: local.source,
    configPath: o.configPath,
    protocol: o.protocol,
    addDefaultRuntime: needsDefaultRuntime(probe.readFile(file)) ? file : undefined,
  });
}

export interface LocalVersion {
  version: ContainerdVersion;
  /** "containerd at <address>" or "containerd --version". */
  source: string;
}

/**
 * The local containerd's version: its Version service at `address`, else `containerd
 * --version` of the binary on PATH (a containerd that is installed but not running).
 */
export async function localContainerdVersion(address: string, binaryVersion: () => string | undefined = containerdBinaryVersion): Promise<LocalVersion> {
  const asked = await lookupContainerdVersion(address, { cacheDir: null });
  const served = parseContainerdVersion(asked.version);
  if (served) return { version: served, source: `containerd at ${address}` };
  const installed = parseContainerdVersion(binaryVersion());
  if (installed) return { version: installed, source: 'containerd --version' };
  throw new UnavailableError(`cannot learn containerd's version: ${asked.error ?? 'no answer'} at ${address}, and no containerd on PATH; pass --version`);
}

/** "containerd github.com/containerd/containerd 1.6.20~ds1 …" → "1.6.20~ds1". */
function containerdBinaryVersion(): string | undefined {
  try {
    const out = execFileSync('containerd', ['--version'], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return /^containerd\s+\S+\s+(\S+)/m.exec(out)?.[1];
  } catch {
    return undefined;
  }
}
