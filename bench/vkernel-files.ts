// Open+read+close of the virtualized /proc files: the kernel's own files vs the vkernel
// view (vkfs over FUSE) vs LXCFS, in one run on this host. Prints medians and ratios;
// never asserts a time.
//
//   node dist/bench/vkernel-files.js            (root, /dev/fuse, make native)
//   BENCH_ROUNDS=10 BENCH_COUNT=300             (samples per file = rounds * count)
//
// Setup: a test cgroup (256 MiB, cpuset of all CPUs, quota = all CPUs, so nobody is
// throttled) holds the reader, which runs in its own pid namespace so LXCFS attributes it
// to that cgroup as it would a container. LXCFS (installed from apt when missing; the
// package's service is never started) runs in the foreground on a private mountpoint with
// --enable-cfs -l, like the view's CPU rule and loadavg, and is stopped afterwards. The
// reader is `vkfs readbench`, which takes the files in turns, round by round.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createCgroupManager } from '../runtime/cgroups/manager';
import { DEFAULT_POLICY } from '../runtime/vkernel/policy';
import { mountsBelow, startView, stopView, vkfsPath } from '../runtime/vkernel/view';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const COUNT = Number(process.env.BENCH_COUNT ?? 300);
const FILES = ['meminfo', 'cpuinfo', 'stat', 'uptime'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function ensureLxcfs(): boolean {
  if (have('lxcfs')) return true;
  console.log('# installing lxcfs from apt (bench only; policy-rc.d keeps its service from starting)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'lxcfs'], { stdio: 'ignore', env });
  return r.status === 0 && have('lxcfs');
}

async function startLxcfs(dir: string): Promise<{ stop: () => Promise<void> } | undefined> {
  const mnt = path.join(dir, 'lxcfs');
  fs.mkdirSync(mnt);
  const child = spawn('lxcfs', ['-f', '-p', path.join(dir, 'lxcfs.pid'), '--enable-cfs', '-l', mnt], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      for (let i = 0; i < 50 && child.exitCode === null; i++) await sleep(20);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    for (const mp of mountsBelow(mnt)) spawnSync('umount', ['-l', mp]);
  };
  for (let i = 0; i < 100; i++) {
    if (mountsBelow(mnt).length && fs.existsSync(path.join(mnt, 'proc', 'meminfo'))) return { stop };
    if (child.exitCode !== null) break;
    await sleep(50);
  }
  await stop();
  return undefined;
}

interface Row {
  file: string;
  median: number;
  p10: number;
  p90: number;
}

function parse(out: string): Map<string, Row> {
  const m = new Map<string, Row>();
  for (const line of out.trim().split('\n')) {
    const [file, median, p10, p90] = line.split(' ');
    m.set(file, { file, median: Number(median), p10: Number(p10), p90: Number(p90) });
  }
  return m;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root (FUSE mounts, cgroups)');
  const vkfs = vkfsPath();
  if (!fs.existsSync(vkfs)) throw new Error(`${vkfs} missing: make native`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vkbench-files-'));
  const id = `vkbench-files-${process.pid}`;
  const ncpu = os.cpus().length;
  const cg = createCgroupManager({ id, cgroupsPath: `/${id}` });
  let lxcfs: { stop: () => Promise<void> } | undefined;
  const stateDir = path.join(work, 'view');
  try {
    await cg.create({ memory: { limit: 256 * 1024 * 1024 }, cpu: { cpus: `0-${ncpu - 1}`, mems: '0', quota: ncpu * 100000, period: 100000 } });
    const view = await startView({ id, stateDir, cgroup: cg.describe(), policy: DEFAULT_POLICY });
    if (view.mode !== 'fuse') throw new Error(`view is in ${view.mode} mode: ${view.fallbackReason ?? ''}`);
    lxcfs = ensureLxcfs() ? await startLxcfs(work) : undefined;
    if (!lxcfs) console.log('# lxcfs unavailable: comparing native and vkfs only');

    const paths: string[] = [];
    for (const f of FILES) {
      paths.push(`/proc/${f}`, path.join(view.source, 'proc', f));
      if (lxcfs) paths.push(path.join(work, 'lxcfs', 'proc', f));
    }
    // The reader: in the cgroup, pid 1 of its own pid namespace (how LXCFS finds "the container").
    const join = cg.procsFiles().map((p) => `echo $$ > ${p}`).join('; ');
    const reader = `${join}; exec unshare --pid --fork ${vkfs} readbench --rounds ${ROUNDS} --count ${COUNT} ${paths.join(' ')}`;
    console.log(`# vkernel file view — ${os.hostname()}, ${ncpu} CPUs, kernel ${os.release()}, ${ROUNDS * COUNT} open+read+close per file, medians in µs`);
    const rows = parse(execFileSync('sh', ['-c', reader], { encoding: 'utf8', maxBuffer: 1 << 20 }));

    const header = ['file', 'native', 'vkfs', ...(lxcfs ? ['lxcfs', 'vkfs/lxcfs'] : []), 'vkfs/native', 'vkfs p10–p90'];
    const table: string[][] = [header];
    for (const f of FILES) {
      const n = rows.get(`/proc/${f}`)!;
      const v = rows.get(path.join(view.source, 'proc', f))!;
      const l = lxcfs ? rows.get(path.join(work, 'lxcfs', 'proc', f)) : undefined;
      table.push([
        `/proc/${f}`,
        n.median.toFixed(1),
        v.median.toFixed(1),
        ...(l ? [l.median.toFixed(1), `${(v.median / l.median).toFixed(2)}×`] : []),
        `${(v.median / n.median).toFixed(1)}×`,
        `${v.p10.toFixed(0)}–${v.p90.toFixed(0)}`,
      ]);
    }
    const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
    for (const r of table) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
    console.log(`# load average during the run: ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`);
  } finally {
    if (lxcfs) await lxcfs.stop();
    await stopView(stateDir).catch((e) => console.error(`stopView: ${(e as Error).message}`));
    await cg.destroy().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`vkernel-files bench: ${(e as Error).message}`);
  process.exit(1);
});
