// `start` (reference §1.4–§1.7, §1.9): find or start the daemon of the container's group and
// answer its address. The socket is created and listening before we answer, and handed to the
// daemon (a fresh one, or a warm one from the manager's pool, through the DaemonLauncher).
// Which protocol the daemon serves and how the answer is written is negotiated with containerd
// (./negotiate.ts, docs/protocol.md); the answer also goes to <bundle>/address, and the
// decision and its warnings to the bundle's log FIFO (containerd copies it into its log).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as ConfigModule from '../config';
import { formatLine, type ShimLogLevel } from '../log';
import type { DaemonLaunchConfig, DaemonLauncher } from './daemon-config';
import type { ShimInvocation } from './flags';
import {
  addressFileText,
  encodeStartAnswer,
  negotiateProtocol,
  protocolFilePath,
  readProtocolFile,
  rememberProtocolForNewDaemons,
  withProtocol,
  writeProtocolFile,
  type ProtocolChoice,
  type ProtocolSetting,
  type VersionLookupOptions,
} from './negotiate';
import { SHIM_SOCKET_DIR, stateRootFor } from './paths';
import { joinShimCgroup } from './shim-cgroup';
import { claimSocket, groupIdFor, groupSocketPath, readBundleAnnotations, socketAddress, writeAddressFile } from './socket';
import { configPathOf, decodeStartInput, inputOptions, type StartInput } from './stdin';

export interface StartContext {
  launcher: DaemonLauncher;
  /** containerd's pid: the shim binary's parent. */
  containerdPid: number;
  /** How containerd's version is looked up (tests: the cache dir). */
  versionLookup?: Omit<VersionLookupOptions, 'containerdPid'>;
  /** Group socket directory when BootstrapParams names none (tests); default /run/containerd/s. */
  socketDir?: string;
}

export interface StartResult {
  /** unix:///run/containerd/s/<hex> */
  address: string;
  /** The exact bytes for stdout. */
  output: Buffer;
  socketPath: string;
  groupId: string;
  /** True when a daemon already served the group (grouping): nothing was started. */
  reused: boolean;
  daemonPid?: number;
  /** The negotiated protocol and how it was announced. */
  choice?: ProtocolChoice;
}

/**
 * What `start` prints for an address (`unix://<socket>`): without a negotiated choice the
 * plain address, no newline, the one form containerd 1.6, 1.7 and 2.x all accept (ttrpc +
 * task v2, §1.4, §2); with one, the answer the choice calls for (negotiate.ts: the plain
 * address, a JSON line with version 2 or 3, or 2.3's protobuf BootstrapResult).
 */
export function startOutput(address: string, _inv: ShimInvocation, _input: StartInput, choice?: ProtocolChoice): Buffer {
  if (!choice) return Buffer.from(address);
  return encodeStartAnswer(choice, address);
}

/** One logrus line to the bundle's `log` FIFO, if containerd holds it open; never fails, never blocks. */
function bundleLog(inv: ShimInvocation, level: ShimLogLevel, msg: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(path.join(inv.bundle, 'log'), fs.constants.O_WRONLY | fs.constants.O_NONBLOCK | fs.constants.O_APPEND);
    fs.writeSync(fd, formatLine(level, msg, { namespace: inv.namespace, id: inv.id }));
  } catch {
    // no log FIFO (tests) or nobody reading it
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

interface StartSettings {
  protocol?: ProtocolSetting;
  keepAliveIntervalMs?: number;
  idleExitMs?: number;
  shimCgroup?: string;
}

/** What `start` takes from the shim config (or runc options): protocol, keep-alive, idle exit, shim cgroup. */
function startSettings(input: StartInput, warnings: string[]): StartSettings {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { resolveShimConfig } = require('../config') as typeof ConfigModule;
    const { config, source } = resolveShimConfig(inputOptions(input), undefined, (m) => warnings.push(m));
    const shimCgroup = config.shimCgroup || undefined;
    // containerd.runc.v1.Options without a config file still carry a ShimCgroup.
    if (source === 'defaults') return { shimCgroup };
    return { protocol: config.protocol, keepAliveIntervalMs: config.grpcKeepAliveIntervalMs, idleExitMs: config.idleExitMs, shimCgroup };
  } catch (err) {
    // Create reports a broken config as its error; start only loses the settings.
    warnings.push(`shim config ignored: ${(err as Error).message}`);
    return {};
  }
}

/** Log levels of BootstrapParams.log_level at or below which the daemon logs debug (DEBUG=-4, TRACE=-8). */
const BOOTSTRAP_DEBUG_LEVEL = -4;

function logChoice(inv: ShimInvocation, choice: ProtocolChoice, reused: boolean): void {
  const how = choice.decidedBy === 'negotiated' ? 'negotiated' : `forced by ${choice.decidedBy}`;
  const version = choice.containerd
    ? `containerd ${choice.containerd} (${choice.versionSource})`
    : choice.versionSource === 'environment'
      ? 'containerd 1.6 or older (no MAX_SHIM_VERSION)'
      : 'containerd version unknown';
  bundleLog(inv, 'info', `shim protocol ${choice.protocol}, bootstrap version ${choice.version}, answered as ${choice.format} (${how}; ${version})${reused ? ', joining a running group daemon' : ''}: ${choice.reason}`);
  for (const w of choice.warnings) bundleLog(inv, 'warning', w);
}

export async function startShim(inv: ShimInvocation, stdin: Uint8Array, ctx: StartContext): Promise<StartResult> {
  const input = decodeStartInput(stdin);
  const params = input.kind === 'bootstrap' ? input.params : undefined;
  const annotations = readBundleAnnotations(inv.bundle);
  const groupId = groupIdFor(annotations, inv.id);
  const socketPath = groupSocketPath(inv.address, inv.namespace, groupId, params?.socket_dir || ctx.socketDir || SHIM_SOCKET_DIR);
  const address = socketAddress(socketPath);
  const warnings: string[] = [];
  const settings = startSettings(input, warnings);
  let choice = await negotiateProtocol({
    inv,
    bootstrap: params,
    annotations,
    configProtocol: settings.protocol,
    warnings,
    lookup: { ...ctx.versionLookup, containerdPid: ctx.containerdPid },
    noMaxShimVersion: inv.maxShimVersion === undefined,
  });

  const claim = claimSocket(socketPath);
  if (claim.kind === 'serving') {
    choice = withProtocol(choice, await readProtocolFile(socketPath, choice.protocol === 'grpc' ? 100 : 0));
    writeAddressFile(inv.bundle, addressFileText(choice, socketPath));
    logChoice(inv, choice, true);
    return { address, output: startOutput(address, inv, input, choice), socketPath, groupId, reused: true, choice };
  }
  const output = startOutput(address, inv, input, choice);
  rememberProtocolForNewDaemons(choice.protocol);
  let daemonPid: number;
  try {
    writeProtocolFile(socketPath, choice.protocol);
    writeAddressFile(inv.bundle, addressFileText(choice, socketPath));
    const config: DaemonLaunchConfig = {
      namespace: inv.namespace,
      address: inv.address,
      ttrpcAddress: params?.containerd_ttrpc_address || inv.ttrpcAddress,
      grpcAddress: params?.containerd_grpc_address || inv.grpcAddress,
      publishBinary: params?.containerd_binary || inv.publishBinary,
      socketPath,
      debug: inv.debug || (params !== undefined && params.log_level <= BOOTSTRAP_DEBUG_LEVEL),
      groupId,
      stateRoot: stateRootFor(inv.namespace),
      configPath: configPathOf(inputOptions(input)),
      bundle: inv.bundle,
      protocol: choice.protocol,
    };
    if (choice.protocol === 'grpc' && settings.keepAliveIntervalMs !== undefined) config.keepAliveIntervalMs = settings.keepAliveIntervalMs;
    if (settings.idleExitMs !== undefined) config.idleExitMs = settings.idleExitMs;
    if (config.grpcAddress === undefined) delete config.grpcAddress;
    if (config.configPath === undefined) delete config.configPath;
    daemonPid = await ctx.launcher.launch({ config, listenFd: claim.fd, containerdPid: ctx.containerdPid });
    // As runc's shim: a daemon that cannot join its ShimCgroup fails start (and is stopped).
    if (settings.shimCgroup) joinOrKill(daemonPid, settings.shimCgroup);
  } catch (err) {
    // No daemon owns the socket: nobody else will remove it.
    fs.rmSync(socketPath, { force: true });
    fs.rmSync(protocolFilePath(socketPath), { force: true });
    throw err;
  } finally {
    fs.closeSync(claim.fd);
  }
  logChoice(inv, choice, false);
  return { address, output, socketPath, groupId, reused: false, daemonPid, choice };
}

function joinOrKill(pid: number, cgroupPath: string): void {
  try {
    joinShimCgroup(pid, cgroupPath);
  } catch (err) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    throw err;
  }
}
