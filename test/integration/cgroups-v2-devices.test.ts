// cgroup v2 device programs on the real kernel: this host's cgroup2 hierarchy holds only
// hugetlb, but BPF_PROG_TYPE_CGROUP_DEVICE programs work without a devices controller. A
// cgroup is made under that mount, a program attached, and a shell moved into it probes
// open(2) of device nodes with the payload (`vktest tryopen PATH r` → errno=...). Checks:
// allowed devices open, others fail EPERM; an update replaces the program (one attached,
// the old one freed); removing the cgroup frees the program. The second half runs the same
// through the v2 driver (createCgroupManager with the cgroup2 mount as its root), which is
// what containers on a unified host use.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseCgroupMounts } from '../../runtime/cgroups/host';
import { createCgroupManager } from '../../runtime/cgroups/manager';
import type { DeviceRule } from '../../runtime/cgroups/device-rules';
import { BpfDeviceLoader, ENOENT, errnoOf, nativeBpf } from '../../runtime/cgroups/v2/devices';
import { describeIf, parseKeyValues, repoRoot, requirement, requireRoot } from '../harness';

const v2mount = parseCgroupMounts(fs.readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.fstype === 'cgroup2')?.mountpoint;
const VKTEST = path.join(repoRoot(), 'build', 'vktest');
const ok =
  requireRoot() &&
  requirement(v2mount !== undefined, 'a cgroup2 hierarchy must be mounted') &&
  requirement(fs.existsSync(VKTEST), `${VKTEST} (make native)`);

const EPERM = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** errno of open(path, O_RDONLY) for each path, from a shell that first joins `dir`. */
function probe(dir: string, ...paths: string[]): Record<string, number> {
  const script = [`echo $$ > ${dir}/cgroup.procs`, ...paths.map((p) => `echo '== ${p}'; ${VKTEST} tryopen ${p} r`)].join(' && ');
  const out = execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  const res: Record<string, number> = {};
  for (const block of out.split(/^== /m).slice(1)) {
    res[block.slice(0, block.indexOf('\n'))] = Number(parseKeyValues(block).errno);
  }
  return res;
}

function attachedIds(dir: string): number[] {
  const bpf = nativeBpf();
  const fd = bpf.openDir(dir);
  try {
    return bpf.query(fd);
  } finally {
    bpf.close(fd);
  }
}

/** Is the program with this id still loaded? */
function progAlive(id: number): boolean {
  const bpf = nativeBpf();
  try {
    bpf.close(bpf.progFdById(id));
    return true;
  } catch (err) {
    if (errnoOf(err) === ENOENT) return false;
    throw err;
  }
}

/** The kernel frees a removed cgroup's programs asynchronously (after an RCU grace period). */
async function waitFreed(id: number, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (progAlive(id)) {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

const rule = (type: 'a' | 'c', major: number, minor: number, access: string, allow: boolean): DeviceRule => ({ type, major, minor, access, allow });
const DENY_ALL = rule('a', -1, -1, 'rwm', false);

describeIf(ok)('cgroup v2 device programs (real kernel)', () => {
  jest.setTimeout(60_000);
  const made: string[] = [];
  const fresh = (): string => path.join(v2mount!, `vkt-dev-${crypto.randomBytes(5).toString('hex')}`);
  afterAll(() => {
    for (const d of made) if (fs.existsSync(d)) fs.rmdirSync(d);
  });

  it('allows /dev/null but not /dev/zero; an update swaps them; removing the cgroup frees the program', async () => {
    const dir = fresh();
    fs.mkdirSync(dir);
    made.push(dir);
    const loader = new BpfDeviceLoader();

    await loader.apply(dir, [DENY_ALL, rule('c', 1, 3, 'rwm', true)]);
    const [first, ...more] = attachedIds(dir);
    expect(more).toEqual([]);
    expect(probe(dir, '/dev/null', '/dev/zero')).toEqual({ '/dev/null': 0, '/dev/zero': EPERM });

    await loader.apply(dir, [DENY_ALL, rule('c', 1, 5, 'r', true)]);
    const [second, ...rest] = attachedIds(dir);
    expect(rest).toEqual([]);
    expect(second).not.toBe(first);
    expect(progAlive(first)).toBe(false); // detached and closed: freed
    expect(probe(dir, '/dev/null', '/dev/zero')).toEqual({ '/dev/null': EPERM, '/dev/zero': 0 });

    // The process tree outside the cgroup is not affected.
    const outside = execFileSync(VKTEST, ['tryopen', '/dev/null', 'r'], { encoding: 'utf8' });
    expect(parseKeyValues(outside).errno).toBe('0');

    fs.rmdirSync(dir);
    expect(await waitFreed(second)).toBe(true);
  });

  it('the v2 driver: deny-all plus the defaults, update opens a device, destroy leaves no cgroup and no program', async () => {
    const name = path.basename(fresh());
    const m = createCgroupManager({ id: name, cgroupsPath: `/${name}`, root: v2mount!, warn: () => undefined });
    expect(m.mode).toBe('v2');
    const dir = m.describe().paths[''];
    made.push(dir);
    try {
      await m.create({});
      const [id] = attachedIds(dir);
      expect(attachedIds(dir)).toHaveLength(1);
      // /dev/kmsg (1:11) is not on runc's default list; /dev/null and /dev/zero are.
      expect(probe(dir, '/dev/null', '/dev/zero', '/dev/kmsg')).toEqual({ '/dev/null': 0, '/dev/zero': 0, '/dev/kmsg': EPERM });

      await m.update({ devices: [{ allow: true, type: 'c', major: 1, minor: 11, access: 'r' }] });
      const [id2] = attachedIds(dir);
      expect(attachedIds(dir)).toHaveLength(1);
      expect(progAlive(id)).toBe(false);
      expect(probe(dir, '/dev/null', '/dev/kmsg')).toEqual({ '/dev/null': 0, '/dev/kmsg': 0 });

      // A rule set the program cannot express is refused, and the program in place stays.
      await expect(
        m.update({ devices: [{ allow: true, type: 'c', access: 'rw' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'w' }] }),
      ).rejects.toThrow(/^linux\.resources\.devices: rule not supported/);
      expect(attachedIds(dir)).toEqual([id2]);

      await m.destroy();
      expect(fs.existsSync(dir)).toBe(false);
      expect(await waitFreed(id2)).toBe(true);
    } finally {
      await m.destroy().catch(() => undefined);
    }
  });
});
