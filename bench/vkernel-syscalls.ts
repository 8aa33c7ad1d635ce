// The vkernel syscall layer's cost: sysinfo() round trip through seccomp user
// notification + vkagent, and the tax on untrapped hot syscalls (getpid, a 1-byte read) of having the
// filter at all. Prints medians and ratios; never asserts a time.
//
//   node dist/bench/vkernel-syscalls.js        (root, make native fixtures; runc optional)
//   BENCH_ROUNDS=5 BENCH_SYSINFO=20000 BENCH_GETPID=2000000
//   BENCH_NO_PROFILE=1   containers without the default seccomp profile (then the vkernel
//                        filter is the only filter and pays the kernel's seccomp entry work)
//
// Each round runs `vktest loop sysinfo|getpid N` (per-call clock_gettime, sorted: median
// and p99 per run) natively on the host, in a vkernel container (256 MiB, view on: the
// agent answers sysinfo) and in a runc container with the same bundle (no agent). The
// figure per configuration is the median over rounds of the per-run medians / p99s.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath, PACKAGE_ROOT } from '../runtime/paths';
import { defaultSeccompProfile } from '../runtime/seccomp/default-profile';
import { defaultSpec } from '../runtime/spec/defaults';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const N_SYSINFO = Number(process.env.BENCH_SYSINFO ?? 20000);
const N_GETPID = Number(process.env.BENCH_GETPID ?? 2000000);
const MiB = 1024 * 1024;

interface Loop {
  median: number;
  p99: number;
  failures: number;
  totalram: number;
}

function parse(out: string): Loop {
  const kv = Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=')));
  return { median: Number(kv.median_ns), p99: Number(kv.p99_ns), failures: Number(kv.failures), totalram: Number(kv.totalram) };
}

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function makeBundle(dir: string, args: string[], annotations: Record<string, string> = {}): void {
  const spec = defaultSpec({});
  spec.root = { path: 'rootfs', readonly: true };
  spec.process!.terminal = false;
  spec.process!.args = args;
  spec.linux!.resources = { ...spec.linux!.resources, memory: { limit: 256 * MiB } };
  spec.annotations = { ...(spec.annotations ?? {}), ...annotations };
  // Both runtimes get the Docker-style default profile (as containers usually do): the
  // getpid ratio then shows what the vkernel filter adds on top of a filter already there.
  if (process.env.BENCH_NO_PROFILE !== '1') spec.linux!.seccomp = defaultSeccompProfile();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
}

function inContainer(runtime: 'vkernel' | 'runc', root: string, bundle: string, args: string[], annotations: Record<string, string> = {}): Loop {
  makeBundle(bundle, args, annotations);
  const id = `vkbench-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const cmd = runtime === 'vkernel' ? process.execPath : 'runc';
  const base = runtime === 'vkernel' ? [path.join(PACKAGE_ROOT, 'dist', 'cmd', 'vkernel.js')] : [];
  const r = spawnSync(cmd, [...base, '--root', root, 'run', '--bundle', bundle, id], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${runtime} run failed: ${r.stderr}`);
  return parse(r.stdout);
}

function native(args: string[]): Loop {
  const r = spawnSync(buildPath('vktest'), args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vktest failed: ${r.stderr}`);
  return parse(r.stdout);
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function main(): void {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkbench-sys-'));
  const bundle = path.join(tmp, 'bundle');
  fs.mkdirSync(bundle);
  spawnSync('cp', ['-a', path.join(PACKAGE_ROOT, 'build', 'fixtures', 'rootfs'), path.join(bundle, 'rootfs')]);
  fs.copyFileSync(buildPath('vktest'), path.join(bundle, 'rootfs', 'vktest'));
  const root = path.join(tmp, 'root');
  const withRunc = have('runc');
  const sys = ['/vktest', 'loop', 'sysinfo', String(N_SYSINFO)];
  const gp = ['/vktest', 'loop', 'getpid', String(N_GETPID)];
  const rd = ['/vktest', 'loop', 'read', String(N_GETPID)];
  const res: Record<string, Loop[]> = {};
  const add = (k: string, l: Loop) => (res[k] ??= []).push(l);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      add('sysinfo native (host)', native(sys));
      add('sysinfo vkernel container (notify)', inContainer('vkernel', root, bundle, sys));
      if (withRunc) add('sysinfo runc container', inContainer('runc', root, bundle, sys));
      add('getpid native (host)', native(gp));
      add('getpid vkernel container', inContainer('vkernel', root, bundle, gp));
      add('getpid vkernel container (mode=off)', inContainer('vkernel', root, bundle, gp, { 'io.vkernel.mode': 'off' }));
      if (withRunc) add('getpid runc container', inContainer('runc', root, bundle, gp));
      add('read native (host)', native(rd));
      add('read vkernel container', inContainer('vkernel', root, bundle, rd));
      if (withRunc) add('read runc container', inContainer('runc', root, bundle, rd));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`# ${ROUNDS} rounds; sysinfo x${N_SYSINFO}, getpid and 1-byte read x${N_GETPID} per run; ns per call`);
  console.log('configuration'.padEnd(38) + 'median'.padStart(10) + 'p99'.padStart(10) + '  failures  totalram');
  const summary: Record<string, { median: number; p99: number }> = {};
  for (const [k, runs] of Object.entries(res)) {
    const s = { median: med(runs.map((r) => r.median)), p99: med(runs.map((r) => r.p99)) };
    summary[k] = s;
    const fails = runs.reduce((a, r) => a + r.failures, 0);
    const ram = k.startsWith('sysinfo') ? `${Math.round(runs[0].totalram / MiB)} MiB` : '';
    console.log(k.padEnd(38) + String(s.median).padStart(10) + String(s.p99).padStart(10) + String(fails).padStart(10) + '  ' + ram);
  }
  const vk = summary['sysinfo vkernel container (notify)'];
  console.log(`sysinfo round trip: median ${(vk.median / 1000).toFixed(2)} us, p99 ${(vk.p99 / 1000).toFixed(2)} us (target <= 10 us median)`);
  if (withRunc) {
    for (const call of ['getpid', 'read']) {
      const ratio = summary[`${call} vkernel container`].median / summary[`${call} runc container`].median;
      console.log(`${call} vkernel/runc: ${ratio.toFixed(3)} (target <= 1.02)`);
    }
  }
}

main();
