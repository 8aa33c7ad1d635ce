// `make bench`: vkernel against its peers, measured side by side in one run on this host.
// Prints medians and ratios; never asserts a time.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../runtime/paths';
import { hyperfine, printTable } from './hyperfine';
import { phaseBreakdown, printPhases } from './phases';

const RUNS = Number(process.env.BENCH_RUNS ?? 30);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 3);

function makeBundle(dir: string): string {
  const rootfs = path.join(PACKAGE_ROOT, 'build', 'fixtures', 'rootfs');
  if (!fs.existsSync(rootfs)) throw new Error(`no fixture rootfs at ${rootfs}: run make fixtures`);
  const spec = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'bench', 'true-config.json'), 'utf8'));
  spec.root = { path: rootfs, readonly: true };
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

function main(): void {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vkbench-'));
  try {
    const bundle = makeBundle(path.join(work, 'bundle'));
    const cli = `${process.execPath} ${path.join(PACKAGE_ROOT, 'build', 'vkernel-launch.js')}`;
    console.log(`# vkernel benchmarks — ${os.hostname()}, ${os.cpus().length} CPUs, node ${process.version}, ${RUNS} runs each`);
    const main = hyperfine(
      [
        { name: 'vkernel run /bin/true', command: `${cli} --root ${work}/vk run -b ${bundle} vkbench` },
        { name: 'runc run /bin/true', command: `runc --root ${work}/runc run -b ${bundle} runcbench` },
        { name: 'node -e 0', command: `${process.execPath} -e 0` },
      ],
      { runs: RUNS, warmup: WARMUP },
    );
    // crun refuses this hybrid host unless /sys/fs/cgroup/unified is gone from its mount namespace.
    const crun = hyperfine([{ name: 'crun run /bin/true', command: `crun --root ${work}/crun run -b ${bundle} crunbench` }], {
      runs: RUNS,
      warmup: WARMUP,
      wrap: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"'],
    });
    printTable('OCI runtime: run a busybox bundle executing /bin/true', [...main, ...crun], 'runc run /bin/true');
    printPhases(phaseBreakdown(cli, bundle, work, RUNS));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main();
