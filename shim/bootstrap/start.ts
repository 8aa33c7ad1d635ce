// `start` (reference §1.4–§1.7, §1.9): find or start the daemon of the container's group and
// answer its address. The socket is created and listening before we answer, and handed to the
// daemon (a fresh one, or a warm one from the manager's pool, through the DaemonLauncher).
import * as fs from 'node:fs';
import type { DaemonLaunchConfig, DaemonLauncher } from './daemon-config';
import type { ShimInvocation } from './flags';
import { SHIM_SOCKET_DIR, stateRootFor } from './paths';
import { claimSocket, groupIdFor, groupSocketPath, readBundleAnnotations, socketAddress, writeAddressFile } from './socket';
import { configPathOf, decodeStartInput, inputOptions, type StartInput } from './stdin';

export interface StartContext {
  launcher: DaemonLauncher;
  /** containerd's pid: the shim binary's parent. */
  containerdPid: number;
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
}

/**
 * What `start` prints for an address: the plain `unix://` address, no newline, the one form
 * containerd 1.6, 1.7 and 2.x all accept for ttrpc + task v2 (§1.4, §2). This is the single
 * place to extend when protocol negotiation (JSON version 2/3, 2.3's protobuf
 * BootstrapResult, gRPC) is added: it sees the invocation and what stdin said.
 */
export function startOutput(address: string, _inv: ShimInvocation, _input: StartInput): Buffer {
  return Buffer.from(address);
}

/** Log levels of BootstrapParams.log_level at or below which the daemon logs debug (DEBUG=-4, TRACE=-8). */
const BOOTSTRAP_DEBUG_LEVEL = -4;

export async function startShim(inv: ShimInvocation, stdin: Uint8Array, ctx: StartContext): Promise<StartResult> {
  const input = decodeStartInput(stdin);
  const params = input.kind === 'bootstrap' ? input.params : undefined;
  const groupId = groupIdFor(readBundleAnnotations(inv.bundle), inv.id);
  const socketPath = groupSocketPath(inv.address, inv.namespace, groupId, params?.socket_dir || SHIM_SOCKET_DIR);
  const address = socketAddress(socketPath);
  const output = startOutput(address, inv, input);

  const claim = claimSocket(socketPath);
  if (claim.kind === 'serving') {
    writeAddressFile(inv.bundle, address);
    return { address, output, socketPath, groupId, reused: true };
  }
  let daemonPid: number;
  try {
    writeAddressFile(inv.bundle, address);
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
    };
    if (config.grpcAddress === undefined) delete config.grpcAddress;
    if (config.configPath === undefined) delete config.configPath;
    daemonPid = await ctx.launcher.launch({ config, listenFd: claim.fd, containerdPid: ctx.containerdPid });
  } catch (err) {
    // No daemon owns the socket: nobody else will remove it.
    fs.rmSync(socketPath, { force: true });
    throw err;
  } finally {
    fs.closeSync(claim.fd);
  }
  return { address, output, socketPath, groupId, reused: false, daemonPid };
}
