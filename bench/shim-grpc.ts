// The shim's two transports side by side (docs/protocol.md). Needs root, `make all fixtures`,
// and containerd 1.7 for the end-to-end part. Prints medians and ratios; never asserts a time.
//
//   node dist/bench/shim-grpc.js                 everything
//   BENCH_CALLS=5000 BENCH_E2E_ROUNDS=0 ...      more calls, no end-to-end part
//
// 1. Daemon boot: spawn → serving, per protocol (the ttrpc path must not pay for grpc-js).
// 2. Per-call latency of State and Pids on a real running container, one daemon per protocol
//    (the same task service), sequential calls: median, p99, mean. ttrpc with the shim's own
//    client; gRPC with a bare HTTP/2 client on one connection (what containerd's grpc-go client
//    costs is close to that) and with a grpc-js client (whose own overhead is most of its time).
// 3. End to end: `ctr run --rm busybox true` on containerd 1.7 through the warm shim manager,
//    gRPC (negotiated) and ttrpc (forced), against the runc shim; alternating rounds, medians.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../runtime/paths';
import type { DaemonConfig } from '../shim/daemon/serve';
import { decode, encode, methodTypes } from '../shim/proto';
import { TtrpcClient } from '../shim/ttrpc';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const BOOTS = Number(process.env.BENCH_BOOTS ?? 10);
const E2E_ROUNDS = Number(process.env.BENCH_E2E_ROUNDS ?? 15);
const V3 = 'containerd.task.v3.Task';
const SERVE_ENTRY = path.join(PACKAGE_ROOT, 'dist', 'test', 'integration', 'shim-serve-entry.js');

type Protocol = 'ttrpc' | 'grpc';

interface Stats {
  median: number;
  p99: number;
  mean: number;
  n: number;
}

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p99: at(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length, n: s.length };
}

const ms = (ns: bigint): number => Number(ns) / 1e6;

/** A bundle running /vktest sleep on the fixture rootfs (read-only, shared). */
function makeBundle(dir: string, id: string): string {
  const rootfs = path.join(PACKAGE_ROOT, 'build', 'fixtures', 'rootfs');
  if (!fs.existsSync(path.join(rootfs, 'vktest'))) throw new Error(`no fixture rootfs at ${rootfs}: run make all fixtures`);
  const spec = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'bench', 'true-config.json'), 'utf8'));
  spec.root = { path: rootfs, readonly: true };
  spec.process.args = ['/vktest', 'sleep', '600'];
  spec.linux = { ...(spec.linux ?? {}), cgroupsPath: `/vkbench-grpc/${id}` };
  const b = path.join(dir, id);
  fs.mkdirSync(b, { recursive: true });
  fs.writeFileSync(path.join(b, 'config.json'), JSON.stringify(spec));
  return b;
}

class Daemon {
  private constructor(
    readonly protocol: Protocol,
    readonly child: ChildProcess,
    readonly config: DaemonConfig,
    readonly bootMs: number,
  ) {}

  static async start(protocol: Protocol, dir: string, name: string): Promise<Daemon> {
    const config: DaemonConfig = {
      namespace: 'vkbench',
      address: path.join(dir, 'no-containerd.sock'),
      ttrpcAddress: path.join(dir, 'no-containerd.sock.ttrpc'),
      publishBinary: 'containerd',
      socketPath: path.join(dir, `${name}.sock`),
      debug: false,
      groupId: name,
      stateRoot: path.join(dir, 'state'),
      configPath: path.join(dir, 'none.toml'),
      protocol,
      keepAliveIntervalMs: 0,
    };
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--no-warnings', SERVE_ENTRY], {
      env: { ...process.env, VKERNEL_TEST_DAEMON: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const ok = await new Promise<boolean>((resolve) => {
      child.stdout!.once('data', () => resolve(true));
      child.once('exit', () => resolve(false));
    });
    if (!ok) throw new Error(`${protocol} daemon did not start`);
    return new Daemon(protocol, child, config, ms(process.hrtime.bigint() - t0));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await new Promise((r) => this.child.once('exit', r));
  }
}

/** The same calls over either transport. */
interface Caller {
  call(method: string, req: object): Promise<unknown>;
  close(): Promise<void>;
}

async function ttrpcCaller(socket: string): Promise<Caller> {
  const c = await TtrpcClient.connect(socket, { metadata: { 'containerd-namespace-ttrpc': 'vkbench' } });
  return {
    call: (method, req) => {
      const { requestType, responseType } = methodTypes(V3, method);
      return c.call(V3, method, requestType, req as never, responseType);
    },
    close: () => c.destroy(),
  };
}

function grpcCaller(socket: string): Caller {
  const c = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  return {
    call: (method, req) => {
      const { requestType, responseType } = methodTypes(V3, method);
      return new Promise((resolve, reject) =>
        c.makeUnaryRequest(`/${V3}/${method}`, (b: Buffer) => b, (b: Buffer) => b, encode(requestType, req as never), new grpc.Metadata(), {}, (err, res) =>
          err ? reject(err) : resolve(decode(responseType, res as Buffer)),
        ),
      );
    },
    close: async () => c.close(),
  };
}

/** gRPC unary calls on one HTTP/2 connection with no client library: the server's cost. */
function h2Caller(socket: string): Caller {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
  session.on('error', () => undefined);
  return {
    call: (method, req) => {
      const { requestType, responseType } = methodTypes(V3, method);
      const body = encode(requestType, req as never);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(body.length, 1);
      return new Promise((resolve, reject) => {
        const st = session.request({ ':method': 'POST', ':path': `/${V3}/${method}`, 'content-type': 'application/grpc', te: 'trailers' });
        const chunks: Buffer[] = [];
        let status = '';
        st.on('response', (h) => (status = String(h['grpc-status'] ?? status)));
        st.on('trailers', (h) => (status = String(h['grpc-status'] ?? status)));
        st.on('data', (d: Buffer) => chunks.push(d));
        st.on('error', reject);
        st.on('end', () => {
          if (status !== '0') return reject(new Error(`${method}: grpc-status ${status}`));
          resolve(decode(responseType, Buffer.concat(chunks).subarray(5)));
        });
        st.end(Buffer.concat([head, body]));
      });
    },
    close: async () => void session.close(),
  };
}

async function timeCalls(caller: Caller, method: string, req: object): Promise<Stats> {
  for (let i = 0; i < WARMUP; i++) await caller.call(method, req);
  const samples: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = process.hrtime.bigint();
    await caller.call(method, req);
    samples.push(ms(process.hrtime.bigint() - t0));
  }
  return stats(samples);
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

async function bootTimes(dir: string): Promise<Record<Protocol, Stats>> {
  const out = {} as Record<Protocol, Stats>;
  const samples: Record<Protocol, number[]> = { ttrpc: [], grpc: [] };
  for (let i = 0; i < BOOTS; i++) {
    for (const p of ['ttrpc', 'grpc'] as const) {
      const d = await Daemon.start(p, dir, `boot-${p}-${i}`);
      samples[p].push(d.bootMs);
      await d.stop();
      fs.rmSync(d.config.socketPath, { force: true });
    }
  }
  for (const p of ['ttrpc', 'grpc'] as const) out[p] = stats(samples[p]);
  return out;
}

async function latencies(dir: string): Promise<Record<string, Stats>> {
  const out: Record<string, Stats> = {};
  for (const protocol of ['ttrpc', 'grpc'] as const) {
    const d = await Daemon.start(protocol, dir, `lat-${protocol}`);
    const caller = protocol === 'grpc' ? grpcCaller(d.config.socketPath) : await ttrpcCaller(d.config.socketPath);
    const id = `vkbench-${protocol}-${process.pid}`;
    try {
      await caller.call('Create', { id, bundle: makeBundle(dir, id) });
      await caller.call('Start', { id });
      if (protocol === 'ttrpc') {
        out['State ttrpc'] = await timeCalls(caller, 'State', { id });
        out['Pids ttrpc'] = await timeCalls(caller, 'Pids', { id });
      } else {
        const bare = h2Caller(d.config.socketPath);
        out['State gRPC'] = await timeCalls(bare, 'State', { id });
        out['Pids gRPC'] = await timeCalls(bare, 'Pids', { id });
        await bare.close();
        out['State gRPC, grpc-js client'] = await timeCalls(caller, 'State', { id });
        out['Pids gRPC, grpc-js client'] = await timeCalls(caller, 'Pids', { id });
      }
    } finally {
      await caller.call('Kill', { id, signal: 9, all: true }).catch(() => undefined);
      await caller.call('Wait', { id }).catch(() => undefined);
      await caller.call('Delete', { id }).catch(() => undefined);
      await caller.close();
      await d.stop();
    }
  }
  return out;
}

async function endToEnd(): Promise<Array<{ name: string; median: number; n: number }> | undefined> {
  if (E2E_ROUNDS <= 0) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startShimEnv, RUNC_RUNTIME } = require('../test/integration/helpers/shim-env') as typeof import('../test/integration/helpers/shim-env');
  const grpcEnv = await startShimEnv('1.7', { env: { VKERNEL_SHIM_PROTOCOL: 'auto' } });
  const ttrpcEnv = await startShimEnv('1.7', { env: { VKERNEL_SHIM_PROTOCOL: 'ttrpc' } });
  const variants = [
    { name: 'runc shim (reference)', env: grpcEnv, runtime: RUNC_RUNTIME },
    { name: 'vkernel, gRPC (negotiated)', env: grpcEnv, runtime: undefined },
    { name: 'vkernel, ttrpc (forced)', env: ttrpcEnv, runtime: undefined },
  ];
  const samples = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  const failures = new Map<string, string[]>(variants.map((v) => [v.name, []]));
  try {
    for (let round = -2; round < E2E_ROUNDS; round++) {
      for (const v of variants) {
        const id = `e2e-${round + 2}-${v.runtime ? 'runc' : 'vk'}`;
        const r = await v.env.cd.ctr(v.env.runArgs(id, ['/bin/busybox', 'true'], ['--rm'], v.runtime));
        if (r.code !== 0) {
          // Reported, not fatal: a failed run is not a sample.
          failures.get(v.name)!.push(`round ${round}: exit ${r.code}: ${r.stderr.trim()}`);
          await v.env.cd.ctr(['task', 'rm', '-f', id]);
          await v.env.cd.ctr(['container', 'rm', id]);
          continue;
        }
        if (round >= 0) samples.get(v.name)!.push(r.durationMs);
      }
    }
  } finally {
    await grpcEnv.stop();
    await ttrpcEnv.stop();
  }
  for (const [name, f] of failures) for (const line of f) console.log(`  (${name} failed: ${line})`);
  return variants.map((v) => ({ name: v.name, median: stats(samples.get(v.name)!).median, n: samples.get(v.name)!.length }));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/shim-grpc needs root (real containers)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkbench-grpc-'));
  console.log(`# shim transports — ${os.hostname()}, ${os.cpus().length} CPUs, node ${process.version}`);
  try {
    const boots = await bootTimes(dir);
    console.log(`\n## Daemon boot (spawn → serving), ${BOOTS} each, ms`);
    const bw = [8, 8, 8];
    console.log(row(['mode', 'median', 'p99'], bw));
    for (const p of ['ttrpc', 'grpc'] as const) console.log(row([p, boots[p].median.toFixed(1), boots[p].p99.toFixed(1)], bw));

    const lat = await latencies(dir);
    console.log(`\n## Per-call latency on a running container, ${CALLS} sequential calls (${WARMUP} warm-up), ms`);
    const w = [28, 8, 8, 8];
    console.log(row(['call', 'median', 'p99', 'mean'], w));
    for (const [name, s] of Object.entries(lat)) console.log(row([name, s.median.toFixed(3), s.p99.toFixed(3), s.mean.toFixed(3)], w));
    for (const m of ['State', 'Pids']) {
      console.log(`${m}: gRPC / ttrpc median = ${(lat[`${m} gRPC`].median / lat[`${m} ttrpc`].median).toFixed(2)}`);
    }

    const e2e = await endToEnd();
    if (e2e) {
      console.log(`\n## ctr run --rm busybox true on containerd 1.7 (warm shim manager), ${E2E_ROUNDS} alternating rounds, medians`);
      const ref = e2e[0].median;
      const ew = [28, 8, 12, 4];
      console.log(row(['variant', 'ms', '× runc shim', 'n'], ew));
      for (const v of e2e) console.log(row([v.name, v.median.toFixed(1), (v.median / ref).toFixed(2), String(v.n)], ew));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.stack ?? String(err));
    process.exit(1);
  },
);
