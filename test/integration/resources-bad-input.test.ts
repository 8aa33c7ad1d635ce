// Invalid linux.resources, through `create` (config.json) and `update` (flags,
// --resources FILE, --resources - on stdin): a non-zero exit, one error line naming the
// field, and nothing left behind — no state dir, no cgroup, no process — and, for update,
// the running container keeps its limits.
//
// vkernel validates before touching anything and names the config field
// ("linux.resources.cpu.shares: …") or the flag ("--pids-limit: …"). runc 1.1.5 mostly
// lets the kernel refuse the write and names the cgroup file; the runc expectations below
// record what it says (RUNTIME=runc validates the suite), including where it differs:
// `update` ignores devices, and a refused cpu-shares update leaves the kernel-clamped value.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LinuxResources, Spec } from '../../runtime/spec/types';
import {
  cleanupRuntimeRoot,
  describeIf,
  makeBundle,
  requireCgroupV1,
  requireFixtures,
  requireRoot,
  requireRuntime,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  runtimeRoot,
  vktest,
  withLeakCheck,
  type RunResult,
} from '../harness';

const ok = requireRoot() && requireFixtures() && requireRuntime() && ['memory', 'cpu', 'cpuset', 'pids'].every((c) => requireCgroupV1(c));
const isRunc = runtimeName() === 'runc';
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------

interface CgroupMount {
  mountpoint: string;
  fstype: string;
  superOptions: string[];
}

function cgroupMounts(): CgroupMount[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => {
      const [pre, post] = line.split(' - ');
      if (!pre || !post) return undefined;
      const [fstype, , superOpts] = post.split(' ');
      return { mountpoint: pre.split(' ')[4], fstype, superOptions: (superOpts ?? '').split(',') };
    })
    .filter((m): m is CgroupMount => !!m && (m.fstype === 'cgroup' || m.fstype === 'cgroup2'));
}

/** v1 controller → host dir of pid's cgroup. */
function cgroupDirsOf(pid: number): Map<string, string> {
  const mounts = cgroupMounts();
  const out = new Map<string, string>();
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1] === '' ? [''] : m[1].split(',');
    const mount =
      m[1] === ''
        ? mounts.find((x) => x.fstype === 'cgroup2')
        : mounts.find((x) => x.fstype === 'cgroup' && x.superOptions.includes(controllers[0]));
    if (mount) for (const c of controllers) out.set(c, path.join(mount.mountpoint, m[2]));
  }
  return out;
}

/** Every cgroup directory (any hierarchy, any depth up to 8) whose name contains id. */
function cgroupDirsNamed(id: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const p = path.join(dir, e.name);
      if (e.name.includes(id)) found.push(p);
      else if (depth < 8) walk(p, depth + 1);
    }
  };
  for (const m of cgroupMounts()) walk(m.mountpoint, 1);
  return found;
}

/** Entries under the runtime's state root (any depth up to 3) whose name contains id. */
function stateEntries(id: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.name.includes(id)) found.push(p);
      else if (e.isDirectory() && depth < 3) walk(p, depth + 1);
    }
  };
  walk(runtimeRoot(), 1);
  return found;
}

/** Asserts the exit code; a mismatch shows the output (toMatchObject would hide it). */
function expectCode(r: RunResult, code: number): void {
  if (r.code !== code) throw new Error(`exit code ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Asserts a non-zero exit; success shows the output. */
function expectFailed(r: RunResult): void {
  if (r.code === 0) throw new Error(`exit code 0, expected a failure\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/**
 * Live processes mentioning id in their cmdline or cgroup. A zombie already handed to the
 * host's init only waits to be reaped (slowly, in some sandboxes): not a leak (as in the
 * harness's leak check).
 */
function processesOf(id: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const cg = fs.readFileSync(`/proc/${e}/cgroup`, 'utf8');
      if (!cmd.includes(id) && !cg.includes(id)) continue;
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' && ppid === '1') continue;
      out.push(`${e} [${state}, ppid ${ppid}]: ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * The error messages of a failed invocation: the msg="…" of each level=error line
 * (both runtimes log logfmt lines on stderr), unescaped; other stderr lines as they are
 * (runc prints its usage text for flag errors).
 */
function errorMessages(r: RunResult): string[] {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => /level=(error|fatal)/.test(l));
  return errors.map((l) => {
    const m = /\bmsg="((?:[^"\\]|\\.)*)"/.exec(l);
    return m ? (JSON.parse(`"${m[1]}"`) as string) : l;
  });
}

/** Non-zero, exactly one error line, matching `message`, and it names something. */
function expectOneLineError(r: RunResult, message: RegExp): void {
  expectFailed(r);
  const msgs = errorMessages(r);
  expect(msgs).toHaveLength(1);
  expect(msgs[0]).toMatch(message);
  if (!isRunc) {
    // vkernel: stderr is that one line and nothing else.
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }
}

async function expectGone(id: string): Promise<void> {
  expect((await runRuntime(['state', id])).stderr).toMatch(/container does not exist/);
  expect(stateEntries(id)).toEqual([]);
  expect(cgroupDirsNamed(id)).toEqual([]);
  // A killed process may take a moment to exit.
  for (let i = 0; i < 40 && processesOf(id).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(processesOf(id)).toEqual([]);
}

// ---------------------------------------------------------------------------------------

interface CreateCase {
  name: string;
  resources: LinuxResources;
  vkernel: RegExp;
  /** 'accepted': runc 1.1.5 creates the container anyway. */
  runc: RegExp | 'accepted';
}

const CREATE_CASES: CreateCase[] = [
  {
    name: 'negative memory limit',
    resources: { memory: { limit: -5 } },
    vkernel: /linux\.resources\.memory\.limit: must be >= 0 or -1 \(got -5\)/,
    runc: /memory\.limit_in_bytes: invalid argument/,
  },
  {
    name: 'memory+swap below the memory limit',
    resources: { memory: { limit: 64 * MiB, swap: MiB } },
    vkernel: /linux\.resources\.memory\.swap: .*>= the memory limit/,
    runc: /memory\.memsw\.limit_in_bytes: invalid argument/,
  },
  {
    name: 'cpu shares below the range',
    resources: { cpu: { shares: 1 } },
    vkernel: /linux\.resources\.cpu\.shares: must be between 2 and 262144 \(got 1\)/,
    runc: /the minimum allowed cpu-shares is 2/,
  },
  {
    name: 'cpu shares above the range',
    resources: { cpu: { shares: 300000 } },
    vkernel: /linux\.resources\.cpu\.shares: must be between 2 and 262144 \(got 300000\)/,
    runc: /the maximum allowed cpu-shares is 262144/,
  },
  {
    name: 'cpu quota below 1ms',
    resources: { cpu: { quota: 500, period: 100_000 } },
    vkernel: /linux\.resources\.cpu\.quota: .*1000/,
    runc: /cpu\.cfs_quota_us: invalid argument/,
  },
  {
    name: 'cpus "0-999"',
    resources: { cpu: { cpus: '0-999' } },
    vkernel: /linux\.resources\.cpu\.cpus: .*not online/,
    runc: /cpuset\.cpus: numerical result out of range/,
  },
  {
    name: 'mems on a missing node',
    resources: { cpu: { mems: '5' } },
    vkernel: /linux\.resources\.cpu\.mems: memory node 5 is not online/,
    runc: /cpuset\.mems: invalid argument/,
  },
  {
    name: 'unknown device type "x"',
    resources: { devices: [{ allow: true, type: 'x', major: 1, minor: 3, access: 'rwm' }] },
    vkernel: /linux\.resources\.devices\[0\]\.type: .*"x"/,
    runc: /invalid cgroup device type "x"/,
  },
  {
    // runc 1.1.5 silently drops the unknown letter (devices.list gets "c 1:11 rw").
    name: 'device access "rwx"',
    resources: { devices: [{ allow: true, type: 'c', major: 1, minor: 11, access: 'rwx' }] },
    vkernel: /linux\.resources\.devices\[0\]\.access: .*"rwx"/,
    runc: 'accepted',
  },
  {
    // BFQ (this host's blkio.bfq.weight) takes 1-1000: runc 1.1.5 writes 5 and succeeds.
    name: 'blkio weight 5 (below 10)',
    resources: { blockIO: { weight: 5 } },
    vkernel: /linux\.resources\.blockIO\.weight: must be between 10 and 1000 \(got 5\)/,
    runc: 'accepted',
  },
  {
    name: 'blkio weight 1001',
    resources: { blockIO: { weight: 1001 } },
    vkernel: /linux\.resources\.blockIO\.weight: must be between 10 and 1000 \(got 1001\)/,
    runc: /blkio\.(bfq\.)?weight: (numerical result out of range|invalid argument)/,
  },
  {
    name: 'memory swappiness 101',
    resources: { memory: { swappiness: 101 } },
    vkernel: /linux\.resources\.memory\.swappiness: must be an integer from 0 to 100 \(got 101\)/,
    runc: /invalid memory swappiness value: 101 \(valid range is 0-100\)/,
  },
  {
    name: 'negative hugepage limit',
    resources: { hugepageLimits: [{ pageSize: '2MB', limit: -1 }] },
    vkernel: /linux\.resources\.hugepageLimits\[0\]\.limit: must be an integer from 0 to 18446744073709551615 \(got -1\)/,
    runc: /hugepageLimits\.limit of type uint64/,
  },
  {
    name: 'unknown hugepage size "3MB"',
    resources: { hugepageLimits: [{ pageSize: '3MB', limit: 2 * MiB }] },
    vkernel: /linux\.resources\.hugepageLimits\[0\]\.pageSize: huge page size not supported by this host \(supported: [^)]*2MB[^)]*\)/,
    runc: /hugetlb/,
  },
  {
    name: 'pids limit "abc"',
    resources: { pids: { limit: 'abc' as unknown as number } },
    vkernel: /linux\.resources\.pids\.limit: must be an integer \(got "abc"\)/,
    runc: /linux\.resources\.pids\.limit of type int64/,
  },
];

// ---------------------------------------------------------------------------------------

/** The container update cases start from. */
const BASE: LinuxResources = { memory: { limit: 64 * MiB }, cpu: { shares: 512, cpus: '0', mems: '0' }, pids: { limit: 50 } };
const WATCHED: [controller: string, file: string][] = [
  ['memory', 'memory.limit_in_bytes'],
  ['cpu', 'cpu.shares'],
  ['cpuset', 'cpuset.cpus'],
  ['cpuset', 'cpuset.mems'],
  ['pids', 'pids.max'],
];

interface UpdateCase {
  name: string;
  /** Arguments before the id; FILE is replaced by a file holding `file`. */
  args: string[];
  file?: string;
  stdin?: string;
  vkernel: RegExp;
  /** 'accepted': runc 1.1.5 exits 0 (it ignores the field). */
  runc: RegExp | 'accepted';
  /** runc 1.1.5 leaves a changed value behind ("your state.json and actual configs might be inconsistent"). */
  runcChanges?: string[];
}

const UPDATE_CASES: UpdateCase[] = [
  {
    name: '--memory -5',
    args: ['--memory', '-5'],
    vkernel: /--memory: not a size: "-5"/,
    runc: /invalid value for memory: invalid size: '-5'/,
  },
  {
    name: 'negative memory in --resources FILE',
    args: ['--resources', 'FILE'],
    file: JSON.stringify({ memory: { limit: -5 } }),
    vkernel: /linux\.resources\.memory\.limit: must be >= 0 or -1 \(got -5\)/,
    runc: /memory\.limit_in_bytes: invalid argument/,
  },
  {
    name: '--cpu-share 1 (runc spelling)',
    args: ['--cpu-share', '1'],
    vkernel: /linux\.resources\.cpu\.shares: must be between 2 and 262144 \(got 1\)/,
    runc: /the minimum allowed cpu-shares is 2/,
    runcChanges: ['cpu.shares'],
  },
  {
    name: '--cpu-shares 300000',
    args: isRunc ? ['--cpu-share', '300000'] : ['--cpu-shares', '300000'],
    vkernel: /linux\.resources\.cpu\.shares: must be between 2 and 262144 \(got 300000\)/,
    runc: /the maximum allowed cpu-shares is 262144/,
    runcChanges: ['cpu.shares'],
  },
  {
    name: '--cpuset-cpus 0-999',
    args: ['--cpuset-cpus', '0-999'],
    vkernel: /linux\.resources\.cpu\.cpus: .*not online/,
    runc: /cpuset\.cpus: numerical result out of range/,
  },
  {
    name: '--cpuset-mems 5 (a missing node)',
    args: ['--cpuset-mems', '5'],
    vkernel: /linux\.resources\.cpu\.mems: memory node 5 is not online/,
    runc: /cpuset\.mems: invalid argument/,
  },
  {
    name: 'unknown device type "x" in --resources FILE',
    args: ['--resources', 'FILE'],
    file: JSON.stringify({ devices: [{ allow: true, type: 'x', access: 'rwm' }] }),
    vkernel: /linux\.resources\.devices\[0\]\.type: .*"x"/,
    runc: 'accepted',
  },
  {
    name: '--blkio-weight 1001',
    args: ['--blkio-weight', '1001'],
    vkernel: /linux\.resources\.blockIO\.weight: must be between 10 and 1000 \(got 1001\)/,
    runc: /blkio\.(bfq\.)?weight: (numerical result out of range|invalid argument)/,
  },
  {
    // runc 1.1.5's update does not carry swappiness over from --resources: exit 0, unchanged.
    name: 'swappiness 101 in --resources FILE',
    args: ['--resources', 'FILE'],
    file: JSON.stringify({ memory: { swappiness: 101 } }),
    vkernel: /linux\.resources\.memory\.swappiness: must be between 0 and 100 or -1 \(got 101\)/,
    runc: 'accepted',
  },
  {
    name: '--pids-limit abc',
    args: ['--pids-limit', 'abc'],
    vkernel: /--pids-limit: not an integer: "abc"/,
    runc: /invalid value "abc" for flag -pids-limit/,
  },
  {
    name: 'pids limit "abc" in --resources - (stdin)',
    args: ['--resources', '-'],
    stdin: JSON.stringify({ pids: { limit: 'abc' } }),
    vkernel: /linux\.resources\.pids\.limit: must be an integer \(got "abc"\)/,
    runc: /cannot unmarshal string into Go struct field LinuxPids\.pids\.limit of type int64/,
  },
  {
    name: 'bad JSON in --resources FILE',
    args: ['--resources', 'FILE'],
    file: '{"memory": {',
    vkernel: /--resources: invalid json/,
    runc: /unexpected EOF/,
  },
  {
    name: 'bad JSON on --resources - (stdin)',
    args: ['--resources', '-'],
    stdin: '{"pids": {"limit": 10,,}}',
    vkernel: /--resources: invalid json/,
    runc: /invalid character ','/,
  },
  {
    name: 'a JSON array as --resources',
    args: ['-r', 'FILE'],
    file: '[1, 2]',
    vkernel: /--resources: must be a JSON object/,
    runc: /cannot unmarshal array/,
  },
  {
    name: '--resources FILE that does not exist',
    args: ['--resources', '/nonexistent/resources.json'],
    vkernel: /--resources: cannot read \/nonexistent\/resources\.json: ENOENT/,
    runc: /no such file or directory/,
  },
];

describeIf(ok)(`bad resource values (${runtimeName()})`, () => {
  afterAll(() => cleanupRuntimeRoot());

  describe('create refuses them and leaves nothing behind', () => {
    it.each(CREATE_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) =>
      withLeakCheck(async () => {
        const b = await makeBundle({
          args: vktest('sleep', 60),
          mutate: (s: Spec) => {
            s.linux!.resources = { ...s.linux!.resources, ...c.resources };
          },
        });
        const want = isRunc ? c.runc : c.vkernel;
        const r = await runRuntime(['create', '--bundle', b.dir, b.id]);
        if (want === 'accepted') {
          expectCode(r, 0);
          await runRuntimeOk(['delete', '--force', b.id]);
          await expectGone(b.id);
          return;
        }
        expectOneLineError(r, want);
        await expectGone(b.id);
        // run fails the same way.
        const run = await runRuntime(['run', '--detach', '--bundle', b.dir, b.id]);
        expectOneLineError(run, want);
        await expectGone(b.id);
      }),
    );
  });

  describe('update refuses them; the container keeps its limits; nothing is left after delete', () => {
    it.each(UPDATE_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) =>
      withLeakCheck(async () => {
        const b = await makeBundle({
          args: vktest('sleep', 60),
          mutate: (s: Spec) => {
            s.linux!.resources = { ...s.linux!.resources, ...BASE };
          },
        });
        await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
        const { pid } = JSON.parse((await runRuntimeOk(['state', b.id])).stdout) as { pid: number };
        const dirs = cgroupDirsOf(pid);
        const read = () => Object.fromEntries(WATCHED.map(([ctrl, file]) => [file, fs.readFileSync(path.join(dirs.get(ctrl)!, file), 'utf8').trim()]));
        const before = read();
        expect(before).toEqual({
          'memory.limit_in_bytes': String(64 * MiB),
          'cpu.shares': '512',
          'cpuset.cpus': '0',
          'cpuset.mems': '0',
          'pids.max': '50',
        });

        const file = path.join(b.dir, 'resources.json');
        if (c.file !== undefined) fs.writeFileSync(file, c.file);
        const args = c.args.map((a) => (a === 'FILE' ? file : a));
        const r = await runRuntime(['update', ...args, b.id], c.stdin !== undefined ? { input: c.stdin } : {});

        const want = isRunc ? c.runc : c.vkernel;
        if (want === 'accepted') {
          expectCode(r, 0);
        } else {
          expectOneLineError(r, want);
        }
        // Still running, limits as before (runc: except what it documents as inconsistent).
        expect(JSON.parse((await runRuntimeOk(['state', b.id])).stdout).status).toBe('running');
        const after = read();
        const changed = isRunc ? (c.runcChanges ?? []) : [];
        for (const f of changed) delete (after as Record<string, string>)[f], delete (before as Record<string, string>)[f];
        expect(after).toEqual(before);
        // The workload is unharmed.
        expect((await runRuntimeOk(['exec', b.id, ...vktest('echo', 'alive')])).stdout).toBe('alive\n');

        await runRuntimeOk(['delete', '--force', b.id]);
        await expectGone(b.id);
        expect(fs.existsSync(dirs.get('memory')!)).toBe(false);
      }),
    );

    it('update of a container that does not exist fails and creates nothing', () =>
      withLeakCheck(async () => {
        const id = `vkt-nope-${process.pid}`;
        const r = await runRuntime(['update', '--pids-limit', '10', id]);
        expectFailed(r);
        expect(r.stderr).toMatch(/container does not exist/);
        await expectGone(id);
      }));
  });
});
