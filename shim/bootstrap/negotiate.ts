// Which protocol `start` announces, and how (docs/protocol.md; reference §1.4, §2, and
// grpc-and-start-path.md for the two containerd defects):
//
//   containerd        answer (what `start` prints and writes to <bundle>/address)
//   1.6 or unknown    unix:///run/containerd/s/<hex>                                  ttrpc, task v2
//   1.7               {"version":2,"protocol":"grpc","address":"/run/containerd/s/<hex>"}   gRPC, task v3
//   2.0 – 2.2 (2.x)   {"version":3,"protocol":"ttrpc","address":"unix:///run/…"}      ttrpc, task v3
//   2.3+ (stdin held  protobuf BootstrapResult {version 3, address unix://…, protocol ttrpc}
//   BootstrapParams)  (the address file gets the same answer as JSON)
//
// gRPC is the answer only where it is safe: 2.0–2.3 tear a gRPC shim down right after start
// (their client starts IDLE and the watcher takes IDLE for a disconnect), so 2.x gets ttrpc
// with task API v3. 1.7 tears one down after 30 idle minutes; the daemon prevents that with a
// keep-alive (shim/grpc/keepalive.ts). 1.6 parses nothing but a plain ttrpc address.
//
// containerd's version comes from 2.3+'s BootstrapParams, else from its Version service at
// -address (MAX_SHIM_VERSION is 2 on 1.7 and 2.x alike, §1.3; only its absence says something:
// containerd 1.6 sets none, so 1.6 is recognised without a call). The lookup is cached per
// containerd process (address + pid + start time): in memory in the manager, and in a small
// file for the cold path. The call itself uses node:http2, not grpc-js (shim/grpc/h2-unary.ts).
//
// Forcing, most specific first: the container's annotation io.vkernel.shim-protocol, the
// environment variable VKERNEL_SHIM_PROTOCOL (containerd's environment), the shim config's
// [shim] protocol. Each takes "grpc", "ttrpc" or "auto". A forced gRPC that containerd cannot
// speak (1.6, or a version we could not learn) is refused with a warning; a forced gRPC on
// 2.x is honoured with a warning naming the defect.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ConfigModule from '../config';
import type * as H2Module from '../grpc/h2-unary';
import type * as ProtoModule from '../proto';
import type { ShimInvocation } from './flags';
import { sha256Hex } from '../../runtime/hash';

export type ShimProtocol = 'ttrpc' | 'grpc';
export type ProtocolSetting = ShimProtocol | 'auto';

/** The container annotation that forces the protocol of the shim that serves it. */
export const PROTOCOL_ANNOTATION = 'io.vkernel.shim-protocol';
/** The environment variable (in containerd's environment) that forces the protocol. */
export const PROTOCOL_ENV = 'VKERNEL_SHIM_PROTOCOL';

/** The Version service path at containerd's gRPC address. */
export const VERSION_METHOD = '/containerd.services.version.v1.Version/Version';

/** Where the cold path keeps containerd versions it learned (tmpfs: per boot). */
export const VERSION_CACHE_DIR = '/run/vkernel/containerd';

export interface ContainerdVersion {
  /** As containerd reported it, e.g. "1.7.24~ds1" or "v2.1.9". */
  text: string;
  major: number;
  minor: number;
  patch: number;
}

/** "1.7.24~ds1", "v2.1.9", "2.3.0-rc.1" → numbers; anything else undefined. */
export function parseContainerdVersion(text: string | undefined): ContainerdVersion | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec((text ?? '').trim());
  if (!m) return undefined;
  return { text: text!.trim(), major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

type Family = '1.6' | '1.7' | '2.x';

function familyOf(v: ContainerdVersion): Family {
  if (v.major >= 2) return '2.x';
  if (v.major === 1 && v.minor >= 7) return '1.7';
  return '1.6';
}

export type ForceSource = 'annotation' | 'environment' | 'config';

export interface ProtocolForce {
  protocol: ShimProtocol;
  source: ForceSource;
}

export type VersionSource = 'bootstrap-params' | 'version-service' | 'cache' | 'environment' | 'unknown';

/** The decision, and everything `start` and `vkernel check` say about it. */
export interface ProtocolChoice {
  protocol: ShimProtocol;
  /** The bootstrap version announced: 2 (plain text or JSON) or 3. */
  version: 2 | 3;
  /** plain: the bare unix:// address (ttrpc, task v2); json: {version,protocol,address}; protobuf: BootstrapResult. */
  format: 'plain' | 'json' | 'protobuf';
  /** containerd's version, when known. */
  containerd?: string;
  versionSource: VersionSource;
  /** Negotiated, or forced by whom. */
  decidedBy: 'negotiated' | ForceSource;
  /** One sentence: why this protocol. */
  reason: string;
  /** Things an operator should know (a refused or risky forced protocol, unreadable settings). */
  warnings: string[];
}

export const DEFECT_2X_IDLE_AT_START =
  'containerd 2.0–2.3 tears a gRPC shim down right after start: its gRPC client starts IDLE and the ' +
  'connection watcher (core/runtime/v2/shim.go grpcDialContext) treats IDLE as "shim disconnected", ' +
  'so containerd runs `delete`, removes the bundle and drops the task';

export const DEFECT_17_IDLE_30MIN =
  'containerd 1.7 (grpc-go >= 1.59) tears a gRPC shim down after 30 minutes without a request in flight; ' +
  'the shim makes containerd call State periodically to prevent it';

export interface DecideFacts {
  containerd?: ContainerdVersion;
  versionSource: VersionSource;
  /** 2.3+ sent BootstrapParams on stdin (so it reads a protobuf BootstrapResult). */
  bootstrapParams: boolean;
  force?: ProtocolForce;
  /** Warnings gathered before deciding (bad settings). */
  warnings?: string[];
}

/** The pure decision table (header comment). */
export function decideProtocol(f: DecideFacts): ProtocolChoice {
  const warnings = [...(f.warnings ?? [])];
  const base = { containerd: f.containerd?.text, versionSource: f.versionSource, warnings };
  const forced = f.force;
  const by = (p: ShimProtocol): ProtocolChoice['decidedBy'] => (forced && forced.protocol === p ? forced.source : 'negotiated');
  const who = forced ? `${PROTOCOL_SOURCES[forced.source]}` : '';

  if (f.bootstrapParams || (f.containerd && familyOf(f.containerd) === '2.x')) {
    const format = f.bootstrapParams ? 'protobuf' : 'json';
    const name = f.containerd ? `containerd ${f.containerd.text}` : 'containerd 2.3+';
    if (forced?.protocol === 'grpc') {
      warnings.push(`gRPC forced by ${who} on ${name}: ${DEFECT_2X_IDLE_AT_START}; ttrpc (the default there) avoids it`);
      return { ...base, protocol: 'grpc', version: 3, format, decidedBy: forced.source, reason: `${name} accepts gRPC with bootstrap version 3, forced by ${who}` };
    }
    return {
      ...base,
      protocol: 'ttrpc',
      version: 3,
      format,
      decidedBy: by('ttrpc'),
      reason: `${name}: ttrpc with task API v3 (bootstrap version 3${f.bootstrapParams ? ', answered as a protobuf BootstrapResult' : ''}); gRPC is avoided because ${DEFECT_2X_IDLE_AT_START}`,
    };
  }
  if (f.containerd && familyOf(f.containerd) === '1.7') {
    if (forced?.protocol === 'ttrpc') {
      return { ...base, protocol: 'ttrpc', version: 2, format: 'plain', decidedBy: forced.source, reason: `containerd ${f.containerd.text}: ttrpc (task API v2, plain address), forced by ${who}` };
    }
    return {
      ...base,
      protocol: 'grpc',
      version: 2,
      format: 'json',
      decidedBy: by('grpc'),
      reason: `containerd ${f.containerd.text} accepts a gRPC shim announced with bootstrap version 2 and calls containerd.task.v3.Task; ${DEFECT_17_IDLE_30MIN}`,
    };
  }
  // 1.6, or a containerd we could not identify: the one answer every version accepts.
  const what = f.containerd ? `containerd ${f.containerd.text} speaks only ttrpc (it takes the whole output of start as a ttrpc address)` : "containerd's version is unknown";
  if (forced?.protocol === 'grpc') {
    warnings.push(
      f.containerd
        ? `gRPC forced by ${who} is ignored: ${what}`
        : `gRPC forced by ${who} is ignored: containerd's version is unknown, and 1.7 needs bootstrap version 2 where 2.x needs 3`,
    );
  }
  return { ...base, protocol: 'ttrpc', version: 2, format: 'plain', decidedBy: by('ttrpc'), reason: `${what}: ttrpc with the plain unix:// address, which every containerd accepts` };
}

const PROTOCOL_SOURCES: Record<ForceSource, string> = {
  annotation: `annotation ${PROTOCOL_ANNOTATION}`,
  environment: `environment ${PROTOCOL_ENV}`,
  config: 'shim config [shim] protocol',
};

/** The socket path of a `unix://` address (or the path itself). */
function bare(socketPathOrAddress: string): string {
  return socketPathOrAddress.startsWith('unix://') ? socketPathOrAddress.slice('unix://'.length) : socketPathOrAddress;
}

/** The address as the chosen protocol wants it: gRPC a bare path, ttrpc unix:// (§1.5). */
export function announcedAddress(choice: Pick<ProtocolChoice, 'protocol'>, socketPath: string): string {
  return choice.protocol === 'grpc' ? bare(socketPath) : `unix://${bare(socketPath)}`;
}

/** The legacy text answer: the plain address, or the JSON line containerd 1.7+ parses. */
export function textAnswer(choice: Pick<ProtocolChoice, 'protocol' | 'version' | 'format'>, socketPath: string): string {
  const address = announcedAddress(choice, socketPath);
  if (choice.format === 'plain') return address;
  return JSON.stringify({ version: choice.version, protocol: choice.protocol, address });
}

/** The exact bytes `start` prints. */
export function encodeStartAnswer(choice: Pick<ProtocolChoice, 'protocol' | 'version' | 'format'>, socketPath: string): Buffer {
  if (choice.format !== 'protobuf') return Buffer.from(textAnswer(choice, socketPath));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const proto = require('../proto') as typeof ProtoModule;
  return proto.encode('containerd.runtime.bootstrap.v1.BootstrapResult', {
    version: choice.version,
    address: announcedAddress(choice, socketPath),
    protocol: choice.protocol,
  });
}

/**
 * What <bundle>/address holds: the same answer, as text. 1.6 and 1.7 reconnect from it after
 * a restart (1.7 parses plain or JSON); 2.x restores from its own bootstrap.json and reads
 * `address` only to migrate, through the same legacy parse, so the protobuf answer is
 * written as its JSON equivalent.
 */
export function addressFileText(choice: Pick<ProtocolChoice, 'protocol' | 'version' | 'format'>, socketPath: string): string {
  return textAnswer(choice.format === 'protobuf' ? { ...choice, format: 'json' } : choice, socketPath);
}

// ---- forcing -----------------------------------------------------------------------

/** "grpc" | "ttrpc" | "auto" (any case, trimmed), else undefined. */
export function parseProtocolSetting(v: string | undefined): ProtocolSetting | undefined {
  const s = (v ?? '').trim().toLowerCase();
  return s === 'grpc' || s === 'ttrpc' || s === 'auto' ? s : undefined;
}

/** The most specific forcing setting (annotation, environment, config); bad values are warned about and skipped. */
export function protocolForce(
  sources: { annotation?: string; environment?: string; config?: ProtocolSetting },
  warnings: string[],
): ProtocolForce | undefined {
  const order: Array<[ForceSource, string | undefined]> = [
    ['annotation', sources.annotation],
    ['environment', sources.environment],
    ['config', sources.config],
  ];
  for (const [source, raw] of order) {
    if (raw === undefined || raw === '') continue;
    const v = parseProtocolSetting(raw);
    if (v === undefined) {
      warnings.push(`${PROTOCOL_SOURCES[source]}: ${JSON.stringify(raw)} is not grpc, ttrpc or auto; ignored`);
      continue;
    }
    if (v === 'auto') return undefined; // the most specific setting asks for negotiation
    return { protocol: v, source };
  }
  return undefined;
}

// ---- containerd's version ----------------------------------------------------------

export interface VersionLookup {
  version?: string;
  source: 'version-service' | 'cache' | 'unknown';
  /** Why it is unknown. */
  error?: string;
}

export interface VersionLookupOptions {
  /** The whole Version call (default VERSION_TIMEOUT_MS, 5 s). */
  timeoutMs?: number;
  /** The pid of the containerd that runs us (the shim binary's parent): the cache key with its start time. */
  containerdPid?: number;
  /** On-disk cache for the cold path (default VERSION_CACHE_DIR); null: memory only. */
  cacheDir?: string | null;
}

interface CacheEntry {
  address: string;
  identity: string;
  version: string;
}

/** Entries without a process identity (no pid known) are trusted this long. */
const ANONYMOUS_TTL_MS = 60_000;
const memoryCache = new Map<string, CacheEntry & { at: number }>();

/** Forget what was learned (tests). */
export function clearVersionCache(): void {
  memoryCache.clear();
}

/** "<pid>:<start time in clock ticks>" of a live process, so a restarted containerd is a new key. */
function processIdentity(pid: number | undefined): string | undefined {
  if (!pid || pid <= 1) return undefined;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${pid}:${fields[19]}`; // field 22 (starttime), counted from field 3 (state)
  } catch {
    return undefined;
  }
}

function cacheFile(dir: string, address: string): string {
  return path.join(dir, `${sha256Hex(address).slice(0, 24)}.json`);
}

function readCacheFile(dir: string, address: string, identity: string): string | undefined {
  try {
    const e = JSON.parse(fs.readFileSync(cacheFile(dir, address), 'utf8')) as Partial<CacheEntry>;
    return e.address === address && e.identity === identity && typeof e.version === 'string' ? e.version : undefined;
  } catch {
    return undefined;
  }
}

function writeCacheFile(dir: string, entry: CacheEntry): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = cacheFile(dir, entry.address);
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch {
    // a cache: the next start asks containerd again
  }
}

/**
 * How long `start` waits for containerd's Version answer. A local call answers in
 * milliseconds; the bound is for a containerd too loaded to answer, which then gets ttrpc
 * (safe everywhere). Not cached as a failure: the next start asks again.
 */
const VERSION_TIMEOUT_MS = 5000;

/** containerd's version from its Version service at `address`, cached per containerd process. */
export async function lookupContainerdVersion(address: string, opts: VersionLookupOptions = {}): Promise<VersionLookup> {
  const identity = processIdentity(opts.containerdPid);
  const key = `${address}\0${identity ?? ''}`;
  const mem = memoryCache.get(key);
  if (mem && (identity !== undefined || Date.now() - mem.at < ANONYMOUS_TTL_MS)) return { version: mem.version, source: 'cache' };
  const dir = opts.cacheDir === undefined ? VERSION_CACHE_DIR : opts.cacheDir;
  if (dir && identity) {
    const v = readCacheFile(dir, address, identity);
    if (v !== undefined) {
      memoryCache.set(key, { address, identity, version: v, at: Date.now() });
      return { version: v, source: 'cache' };
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const h2 = require('../grpc/h2-unary') as typeof H2Module;
  let version: string;
  try {
    const res = await h2.h2Unary(address, VERSION_METHOD, Buffer.alloc(0), { timeoutMs: opts.timeoutMs ?? VERSION_TIMEOUT_MS });
    version = h2.protoStrings(res).get(1) ?? '';
  } catch (err) {
    return { source: 'unknown', error: (err as Error).message };
  }
  if (!parseContainerdVersion(version)) return { source: 'unknown', error: `containerd answered version ${JSON.stringify(version)}` };
  memoryCache.set(key, { address, identity: identity ?? '', version, at: Date.now() });
  if (dir && identity) writeCacheFile(dir, { address, identity, version });
  return { version, source: 'version-service' };
}

// ---- the negotiation ---------------------------------------------------------------

/** What `start` knows when it negotiates. */
export interface NegotiateInput {
  inv: Pick<ShimInvocation, 'address' | 'shimProtocol'>;
  /** 2.3+'s BootstrapParams, if stdin held one. */
  bootstrap?: { containerd_version: string };
  /** The container's annotations (config.json). */
  annotations: Record<string, string>;
  /** [shim] protocol of the shim config, if one was read. */
  configProtocol?: ProtocolSetting;
  /** Warnings from reading the settings (e.g. a broken config file). */
  warnings?: string[];
  lookup?: VersionLookupOptions;
  /**
   * containerd set no MAX_SHIM_VERSION: it is 1.6 (or older), which sets none; 1.7 and 2.x
   * always set it. Such a containerd gets ttrpc without a Version call.
   */
  noMaxShimVersion?: boolean;
}

export async function negotiateProtocol(n: NegotiateInput): Promise<ProtocolChoice> {
  const warnings = [...(n.warnings ?? [])];
  const force = protocolForce({ annotation: n.annotations[PROTOCOL_ANNOTATION], environment: n.inv.shimProtocol, config: n.configProtocol }, warnings);
  if (n.bootstrap) {
    return decideProtocol({ containerd: parseContainerdVersion(n.bootstrap.containerd_version), versionSource: 'bootstrap-params', bootstrapParams: true, force, warnings });
  }
  if (n.noMaxShimVersion) {
    const choice = decideProtocol({ versionSource: 'environment', bootstrapParams: false, force, warnings });
    const reason = 'containerd set no MAX_SHIM_VERSION, so it is 1.6 or older, which speaks only ttrpc (it takes the whole output of start as a ttrpc address)';
    if (force?.protocol === 'grpc') choice.warnings.splice(-1, 1, `gRPC forced by ${PROTOCOL_SOURCES[force.source]} is ignored: ${reason}`);
    return { ...choice, reason: `${reason}: ttrpc with the plain unix:// address` };
  }
  const found = await lookupContainerdVersion(n.inv.address, n.lookup);
  if (found.source === 'unknown') warnings.push(`cannot ask containerd at ${n.inv.address} for its version: ${found.error}`);
  return decideProtocol({ containerd: parseContainerdVersion(found.version), versionSource: found.source, bootstrapParams: false, force, warnings });
}

/**
 * The same decision with the protocol a running group daemon already speaks (a socket speaks
 * one protocol): a container joining a group gets the group's protocol.
 */
export function withProtocol(choice: ProtocolChoice, protocol: ShimProtocol): ProtocolChoice {
  if (choice.protocol === protocol) return choice;
  const format = choice.format === 'protobuf' ? 'protobuf' : protocol === 'grpc' || choice.version === 3 ? 'json' : 'plain';
  return {
    ...choice,
    protocol,
    format,
    reason: `the group's shim daemon already serves ${protocol} (${choice.reason})`,
  };
}

// ---- warm daemons -------------------------------------------------------------------

/**
 * Set (to "1") in the environment of the process that runs `start` once it answered gRPC: the
 * daemons it spawns from then on (the manager's warm pool, a direct daemon) inherit it and load
 * grpc-js while they boot (shim/daemon/serve.ts), not after containerd already connected. A
 * ttrpc answer clears it, so hosts whose containerd gets ttrpc never load grpc-js.
 */
export const PRELOAD_GRPC_ENV = 'VKERNEL_SHIM_PRELOAD_GRPC';

export function rememberProtocolForNewDaemons(protocol: ShimProtocol, env: NodeJS.ProcessEnv = process.env): void {
  if (protocol === 'grpc') env[PRELOAD_GRPC_ENV] = '1';
  else delete env[PRELOAD_GRPC_ENV];
}

// ---- the group's protocol, next to its socket -----------------------------------------
//
// A gRPC daemon's socket gets `<socket>.protocol` ("grpc"); a ttrpc daemon's gets none, so
// hosts where containerd gets ttrpc (1.6, 2.x) leave nothing beside their sockets, and a daemon
// from before negotiation (ttrpc) needs none. The daemon removes the file with its socket.

/** `<socket>.protocol`: present (holding "grpc") while a gRPC daemon serves `<socket>`. */
export function protocolFilePath(socketPath: string): string {
  return `${socketPath}.protocol`;
}

/** Records (gRPC) or clears (ttrpc: a stale file of a dead gRPC daemon) the protocol of a socket just claimed. */
export function writeProtocolFile(socketPath: string, protocol: ShimProtocol): void {
  const file = protocolFilePath(socketPath);
  if (protocol !== 'grpc') {
    fs.rmSync(file, { force: true });
    return;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, protocol, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * The protocol of a live group daemon: gRPC when its file says so, else ttrpc. A gRPC daemon's
 * `start` writes the file right after claiming the socket (microseconds later), so a caller
 * that negotiated gRPC itself waits `waitMs` for a missing file before concluding ttrpc.
 */
export async function readProtocolFile(socketPath: string, waitMs = 0): Promise<ShimProtocol> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      if (fs.readFileSync(protocolFilePath(socketPath), 'utf8').trim() === 'grpc') return 'grpc';
    } catch {
      // not written (yet)
    }
    if (Date.now() >= deadline) return 'ttrpc';
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ---- `vkernel check` -----------------------------------------------------------------

export interface ProtocolDescription extends ProtocolChoice {
  /** containerd's gRPC address asked. */
  address: string;
  /** What `start` would print, with <socket> for the group socket path (protobuf shown as its JSON equivalent). */
  example: string;
  /** Human-readable lines for `vkernel check`. */
  lines: string[];
}

/**
 * Which protocol the containerd at `address` gets from this shim, and why: containerd's
 * Version service, VKERNEL_SHIM_PROTOCOL from this process's environment and [shim] protocol
 * of the default config file (annotations are per container and not considered). Never throws.
 */
export async function describeProtocolChoice(address: string, opts: { env?: NodeJS.ProcessEnv; configPath?: string; timeoutMs?: number } = {}): Promise<ProtocolDescription> {
  const warnings: string[] = [];
  let configProtocol: ProtocolSetting | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const config = require('../config') as typeof ConfigModule;
    configProtocol = config.resolveShimConfig(null, opts.configPath, (m) => warnings.push(m)).config.protocol;
  } catch (err) {
    warnings.push(`shim config: ${(err as Error).message}`);
  }
  const env = opts.env ?? process.env;
  const choice = await negotiateProtocol({
    inv: { address, shimProtocol: env[PROTOCOL_ENV] },
    annotations: {},
    configProtocol,
    warnings,
    lookup: { timeoutMs: opts.timeoutMs, cacheDir: null },
  });
  const example = addressFileText(choice, '<socket>');
  const lines = [
    `containerd at ${address}: ${choice.containerd ?? 'version unknown'} (${choice.versionSource})`,
    `shim protocol: ${choice.protocol}, bootstrap version ${choice.version} (${choice.decidedBy})`,
    `start answers: ${example}`,
    `why: ${choice.reason}`,
    ...choice.warnings.map((w) => `warning: ${w}`),
  ];
  return { ...choice, address, example, lines };
}
