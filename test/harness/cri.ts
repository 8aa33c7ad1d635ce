// Pieces for driving containerd's CRI plugin the way the kubelet does, for
// test/integration/cri.test.ts (composed with TestContainerd / ShimEnv):
//
//   const net = CniBridge.create(dir);                         // bridge + host-local on a private /24
//   const pause = await writePauseImage(path.join(dir, 'pause-oci.tar'));
//   const cd = await TestContainerd.start({ version: '1.6', ...criContainerdOptions({ sandboxImage: pause, cni: net, shimConfigPath }) });
//   const cri = new CriClient(cd.address);
//   const { pod_sandbox_id } = await cri.runtime('RunPodSandbox', { config, runtime_handler: 'vkernel' });
//   ...
//   cri.close(); expect(net.leftovers()).toEqual([]); net.remove();
//
// The CRI API: proto/cri/api.proto (package runtime.v1, only what the tests use), parsed
// with protobufjs when first needed and spoken over @grpc/grpc-js with raw buffers. It is
// not in proto/bundle.json: the shim never speaks CRI.
//
// CRI only ever uses the containerd namespace k8s.io, so criContainerdOptions() sets it.
// Host state it touches beyond the TestContainerd dir: the bridge (removed by remove()),
// veths and network namespaces (/var/run/netns/cni-*, removed by CRI when the pod stops),
// libcni's result cache (/var/lib/cni/results), the pod's cgroups (cgroup_parent) and
// /run/vkernel/shim/k8s.io (the shim's runtime root for the namespace).
import type * as GrpcJs from '@grpc/grpc-js';
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import { runtimeEntry } from '../../runtime/check/containerd-config';
import { repoRoot } from '../fixtures/image';
import { cgroupMounts, cgroupProcs, cgroupTree, type ContainerdOptions, type RuntimeEntry } from './containerd';

/** The containerd namespace of everything CRI makes. */
export const CRI_NAMESPACE = 'k8s.io';
/** Debian's containernetworking-plugins. */
export const DEFAULT_CNI_BIN_DIR = '/usr/lib/cni';
/** Where libcni (inside containerd's CRI) caches ADD results; not configurable in containerd 1.6. */
export const CNI_CACHE_DIR = '/var/lib/cni';
/** Where CRI 1.6 mounts pod network namespaces (netns_mounts_under_state_dir = false, the default). */
export const NETNS_DIR = '/var/run/netns';

/**
 * The runtime handler vkernel ships for CRI (`vkernel containerd-config`, docs/cri.md:
 * runtime/check/containerd-config.ts runtimeEntry()), as a TestContainerd runtime entry, so
 * the test runs exactly what users paste. RuntimeClass `handler: vkernel`. The allow-lists
 * matter: CRI copies a pod's or container's annotations into the OCI spec (where the shim
 * reads vkernel's view policy) only for keys these patterns match.
 */
export function vkernelHandler(configPath: string, runtimePath?: string): RuntimeEntry {
  const { runtime_type, pod_annotations, container_annotations, options, ...rest } = runtimeEntry(configPath) as {
    runtime_type: string;
    pod_annotations?: string[];
    container_annotations?: string[];
    options?: Record<string, unknown>;
  };
  // A key TestContainerd cannot write would silently drop out of the tested config.
  if (Object.keys(rest).length > 0) throw new Error(`vkernelHandler: the shipped runtime entry has keys the harness does not map: ${Object.keys(rest).join(', ')}`);
  return { runtimeType: runtime_type, runtimePath, podAnnotations: pod_annotations, containerAnnotations: container_annotations, options };
}

export interface CriConfigOptions {
  /** The sandbox (pause) image, already imported into k8s.io. */
  sandboxImage: string;
  cni: { confDir: string; binDir: string };
  /** The ConfigPath option of the vkernel handler (a TOML file the shim reads). */
  shimConfigPath: string;
  /** Absolute shim path (runtime_path); default: the name lookup on containerd's PATH. */
  runtimePath?: string;
  /**
   * CRI's restrict_oom_score_adj (never below containerd's own). Default: on when this
   * process lacks CAP_SYS_RESOURCE (as root in some VMs and nested containers), where
   * the sandbox's -998 could not be written by any runtime.
   */
  restrictOomScoreAdj?: boolean;
}

/** Does this process have CAP_SYS_RESOURCE (needed to lower an oom_score_adj)? */
export function hasCapSysResource(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m !== null && ((BigInt(`0x${m[1]}`) >> 24n) & 1n) === 1n;
}

/** TestContainerd options for containerd 1.6/1.7 with the CRI plugin and the `vkernel` handler. */
export function criContainerdOptions(o: CriConfigOptions): Pick<ContainerdOptions, 'cri' | 'namespace' | 'runtimes' | 'extraConfig'> {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return {
    cri: true,
    namespace: CRI_NAMESPACE,
    runtimes: { vkernel: vkernelHandler(o.shimConfigPath, o.runtimePath) },
    extraConfig: [
      `[${cri}]`,
      `  sandbox_image = ${JSON.stringify(o.sandboxImage)}`,
      `  restrict_oom_score_adj = ${o.restrictOomScoreAdj ?? !hasCapSysResource()}`,
      // ContainerStats' usage_nano_cores needs two samples; keep the period short.
      '  stats_collect_period = 1',
      `[${cri}.cni]`,
      `  bin_dir = ${JSON.stringify(o.cni.binDir)}`,
      `  conf_dir = ${JSON.stringify(o.cni.confDir)}`,
      '  max_conf_num = 1',
    ].join('\n'),
  };
}

// ---- CNI: a bridge network of our own -----------------------------------------------------

export interface CniBridgeOptions {
  binDir?: string;
  /** Third octet of 10.213.X.0/24 (default: a free one, picked at random). */
  octet?: number;
}

function hostIpv4Text(): string {
  try {
    return execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' });
  } catch {
    return '';
  }
}

/** Does a network interface with this name exist (this network namespace)? */
export function linkExists(name: string): boolean {
  return fs.existsSync(path.join('/sys/class/net', name));
}

/**
 * A CNI network of type bridge with host-local IPAM on a private /24 (10.213.X.0/24) and a
 * bridge name of its own, written as a conflist into `<dir>/net.d`. The IPAM leases live in
 * `<dir>/cni-ipam` (host-local's dataDir). Neither gateway nor masquerading: no iptables
 * rules and no ip_forward change on the host. CRI adds the loopback network itself (it runs
 * the `loopback` plugin from bin_dir for `lo`), so the conflist does not list it.
 */
export class CniBridge {
  private constructor(
    readonly name: string,
    readonly bridge: string,
    readonly subnet: string,
    readonly confDir: string,
    readonly binDir: string,
    readonly dataDir: string,
  ) {}

  static create(dir: string, opts: CniBridgeOptions = {}): CniBridge {
    const binDir = opts.binDir ?? DEFAULT_CNI_BIN_DIR;
    const id = crypto.randomBytes(3).toString('hex');
    const bridge = `vkcri${id}`; // <= 15 bytes (IFNAMSIZ)
    if (linkExists(bridge)) throw new Error(`bridge ${bridge} already exists`);
    let octet = opts.octet;
    if (octet === undefined) {
      const used = hostIpv4Text();
      const free = [...Array(256).keys()].filter((n) => !used.includes(`10.213.${n}.`));
      if (free.length === 0) throw new Error('no free 10.213.X.0/24 subnet on this host');
      octet = free[crypto.randomInt(free.length)];
    }
    const subnet = `10.213.${octet}.0/24`;
    const name = `vkt-cri-${id}`;
    const confDir = path.join(dir, 'net.d');
    const dataDir = path.join(dir, 'cni-ipam');
    fs.mkdirSync(confDir, { recursive: true });
    fs.mkdirSync(dataDir, { recursive: true });
    const conf = {
      cniVersion: '1.0.0',
      name,
      plugins: [
        {
          type: 'bridge',
          bridge,
          isGateway: false,
          ipMasq: false,
          hairpinMode: false,
          ipam: { type: 'host-local', ranges: [[{ subnet }]], dataDir },
        },
      ],
    };
    fs.writeFileSync(path.join(confDir, `10-${name}.conflist`), JSON.stringify(conf, null, 2) + '\n');
    return new CniBridge(name, bridge, subnet, confDir, binDir, dataDir);
  }

  /** The addresses host-local has handed out (one file per leased IP in its dataDir). */
  leases(): string[] {
    try {
      return fs.readdirSync(path.join(this.dataDir, this.name)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
    } catch {
      return [];
    }
  }

  /** Interfaces attached to the bridge (the host ends of pod veths). */
  ports(): string[] {
    try {
      return fs.readdirSync(path.join('/sys/class/net', this.bridge, 'brif')).sort();
    } catch {
      return [];
    }
  }

  /** libcni's cached results for this network (removed by CNI DEL). */
  cachedResults(): string[] {
    const dir = path.join(CNI_CACHE_DIR, 'results');
    try {
      return fs.readdirSync(dir).filter((f) => f.startsWith(`${this.name}-`)).map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  }

  /** What a torn-down pod must not leave: veths on the bridge, IP leases, cached results. */
  leftovers(): string[] {
    return [
      ...this.ports().map((p) => `veth: ${p} on ${this.bridge}`),
      ...this.leases().map((ip) => `ip-lease: ${ip} (${this.name})`),
      ...this.cachedResults().map((f) => `cni-cache: ${f}`),
    ];
  }

  /**
   * Deletes the bridge (the bridge plugin creates it on the first ADD and never deletes it,
   * like every CNI bridge network) and whatever leftovers() reported. Idempotent.
   */
  remove(): void {
    if (linkExists(this.bridge)) execFileSync('ip', ['link', 'del', this.bridge], { stdio: 'ignore', timeout: 10_000 });
    for (const f of this.cachedResults()) fs.rmSync(f, { force: true });
  }
}

/** Network namespaces CRI made (/var/run/netns/cni-*). */
export function cniNetns(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR).filter((f) => f.startsWith('cni-')).map((f) => path.join(NETNS_DIR, f));
  } catch {
    return [];
  }
}

// ---- pod cgroups ----------------------------------------------------------------------------

/**
 * The cgroup parent a kubelet with the cgroupfs driver sends for a BestEffort pod,
 * `/kubepods/besteffort/pod<uid>`, under a root of our own (as kubelet's --cgroup-root), so
 * the whole tree can be checked and removed afterwards.
 */
export class PodCgroups {
  readonly root: string;
  constructor(readonly uid: string) {
    this.root = `/vkt-cri-${crypto.randomBytes(4).toString('hex')}`;
  }

  get parent(): string {
    return `${this.root}/kubepods/besteffort/pod${this.uid}`;
  }

  /** Container cgroups (dirs below the pod cgroup) and processes still in the tree. */
  leftovers(): string[] {
    const out: string[] = [];
    for (const m of cgroupMounts()) {
      const pod = path.join(m, this.parent);
      for (const d of cgroupTree(pod)) {
        const procs = cgroupProcs(d).length;
        if (d !== pod || procs > 0) out.push(`cgroup: ${d}${procs ? ` (${procs} processes)` : ''}`);
      }
    }
    return out;
  }

  /** Removes the tree under every hierarchy (what kubelet does for the pod cgroup). Idempotent. */
  remove(): void {
    for (const m of cgroupMounts()) {
      for (const d of cgroupTree(path.join(m, this.root))) {
        try {
          fs.rmdirSync(d);
        } catch {
          // busy or gone: leftovers() reports the busy ones
        }
      }
    }
  }
}

// ---- the CRI client -------------------------------------------------------------------------

let criRoot: protobuf.Root | undefined;

/** proto/cri/api.proto, parsed once (field names as written: snake_case). */
export function criProto(): protobuf.Root {
  if (!criRoot) {
    const file = path.join(repoRoot(), 'proto', 'cri', 'api.proto');
    criRoot = new protobuf.Root().loadSync(file, { keepCase: true });
    criRoot.resolveAll();
  }
  return criRoot;
}

/** A decoded CRI message: snake_case fields, 64-bit integers as numbers, enums as names, bytes as Buffers. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type CriMessage = Record<string, any>;

export class CriError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'CriError';
  }
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const grpcJs = (): typeof GrpcJs => require('@grpc/grpc-js') as typeof GrpcJs;

/** runtime.v1 RuntimeService / ImageService over containerd's gRPC socket. */
export class CriClient {
  readonly #grpc = grpcJs();
  readonly #client: GrpcJs.Client;

  constructor(readonly address: string) {
    this.#client = new this.#grpc.Client(`unix://${address.replace(/^unix:\/\//, '')}`, this.#grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 16 << 20,
    });
  }

  /** One unary call; rejects with a CriError carrying the gRPC code and containerd's message. */
  call(service: 'RuntimeService' | 'ImageService', method: string, request: CriMessage, timeoutMs = 60_000): Promise<CriMessage> {
    const svc = criProto().lookupService(`runtime.v1.${service}`);
    const m = svc.methods[method];
    if (!m) return Promise.reject(new Error(`proto/cri/api.proto: runtime.v1.${service} has no method ${method}`));
    const reqType = m.resolvedRequestType!;
    const resType = m.resolvedResponseType!;
    // fromObject drops unknown fields silently: catch a misspelt top-level one here.
    const unknown = Object.keys(request).filter((k) => !reqType.fields[k]);
    if (unknown.length > 0) return Promise.reject(new Error(`${method}: ${reqType.name} has no field ${unknown.join(', ')}`));
    const body = Buffer.from(reqType.encode(reqType.fromObject(request)).finish());
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        `/runtime.v1.${service}/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        new this.#grpc.Metadata(),
        { deadline: Date.now() + timeoutMs },
        (e: GrpcJs.ServiceError | null, res?: Buffer) => {
          if (e) return reject(new CriError(e.code, `CRI ${method}: ${e.details || e.message}`));
          try {
            const msg = resType.decode(res ?? Buffer.alloc(0));
            resolve(resType.toObject(msg, { longs: Number, enums: String, defaults: true, arrays: true, objects: true }));
          } catch (x) {
            reject(x);
          }
        },
      );
    });
  }

  runtime(method: string, request: CriMessage = {}, timeoutMs?: number): Promise<CriMessage> {
    return this.call('RuntimeService', method, request, timeoutMs);
  }

  image(method: string, request: CriMessage = {}, timeoutMs?: number): Promise<CriMessage> {
    return this.call('ImageService', method, request, timeoutMs);
  }

  close(): void {
    this.#client.close();
  }
}
