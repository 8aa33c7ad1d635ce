// `vkernel check` on this host (seccomp user notification, FUSE, overlayfs, user namespaces;
// cgroups in whatever mode the host runs: v1 hybrid on the development machines, pure v2 on a
// stock Debian 12): every host row passes, each detail agrees with an independent reading of
// the kernel (/proc/mounts, /proc/cgroups, cgroup.controllers for the cgroups row), the JSON
// has the documented shape, and warnings alone exit 0. containerd is pointed
// at a socket nobody serves, so its rows are the "not running" ones on any machine; the
// passing containerd rows are checked in containerd-config.test.ts against real containerds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeIf, repoRoot, requireRoot, requireRuntime, runRuntime, type RunResult } from '../harness';
import type { CheckReport } from '../../runtime/check';
import { cgroupRow } from '../../runtime/check/host-rows';

const ok = requireRoot() && requireRuntime('vkernel');

const HOST_ROWS = ['kernel', 'cgroups', 'seccomp', 'seccomp-notify', 'seccomp-wait-killable-recv', 'fuse', 'overlayfs', 'user-namespaces', 'native-helpers'];
const CONTAINERD_ROWS = ['containerd', 'shim-protocol', 'shim-binary', 'containerd-config'];

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * The cgroups row's detail, worked out from /proc/mounts (not mountinfo, which check reads)
 * and the v1 controller names of /proc/cgroups: "v2; v2 /sys/fs/cgroup: <cgroup.controllers>;
 * device rules as an eBPF program" on a pure v2 host, "hybrid; v1: <sorted>; v2 <at>: <...>"
 * with v1 hierarchies next to a cgroup2 mount, "v1; v1: <sorted>" with none.
 */
function expectedCgroupsDetail(mounts: string, v1Names: string[], controllers: (at: string) => string): string {
  const under = mounts
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 4 && (f[2] === 'cgroup' || f[2] === 'cgroup2') && (f[1] === CGROUP_ROOT || f[1].startsWith(CGROUP_ROOT + '/')));
  const v2 = under.filter((f) => f[2] === 'cgroup2').map((f) => `v2 ${f[1]}: ${controllers(f[1]).trim().split(/\s+/).filter(Boolean).join(',') || '(none)'}`);
  if (under.some((f) => f[2] === 'cgroup2' && f[1] === CGROUP_ROOT)) return ['v2', ...v2, 'device rules as an eBPF program'].join('; ');
  const v1 = [...new Set(under.filter((f) => f[2] === 'cgroup').flatMap((f) => f[3].split(',').filter((o) => v1Names.includes(o))))].sort();
  return [v2.length ? 'hybrid' : 'v1', `v1: ${v1.join(',')}`, ...v2].join('; ');
}

/** Controller names the kernel knows (the first column of /proc/cgroups). */
function v1ControllerNames(procCgroups: string): string[] {
  return procCgroups
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/)[0]);
}

describeIf(ok)('vkernel check on this host', () => {
  const nowhere = path.join(os.tmpdir(), `vkt-check-${process.pid}`, 'containerd.sock');
  let json: RunResult;
  let report: CheckReport;
  const rowOf = (name: string) => report.rows.find((r) => r.name === name);

  beforeAll(async () => {
    json = await runRuntime(['check', '--address', nowhere, '--format', 'json'], { runtime: 'vkernel' });
    report = JSON.parse(json.stdout) as CheckReport;
  });

  it('JSON: {rows:[{name,status,detail}], summary:{status,pass,warn,fail}}, rows in the documented order', () => {
    expect(Object.keys(report)).toEqual(['rows', 'summary']);
    expect(report.rows.map((r) => r.name)).toEqual([...HOST_ROWS, ...CONTAINERD_ROWS]);
    for (const r of report.rows) {
      expect(Object.keys(r)).toEqual(['name', 'status', 'detail']);
      expect(['pass', 'warn', 'fail']).toContain(r.status);
      expect(r.detail).not.toMatch(/\n/);
    }
    const count = (s: string) => report.rows.filter((r) => r.status === s).length;
    expect(report.summary).toEqual({ status: count('fail') ? 'fail' : count('warn') ? 'warn' : 'pass', pass: count('pass'), warn: count('warn'), fail: count('fail') });
  });

  it('every host row passes here', () => {
    expect(report.rows.filter((r) => HOST_ROWS.includes(r.name) && r.status !== 'pass')).toEqual([]);
  });

  it('the details agree with the kernel', () => {
    expect(rowOf('kernel')!.detail).toBe(os.release());
    const mounts = fs.readFileSync('/proc/mounts', 'utf8');
    const controllers = (at: string): string => fs.readFileSync(path.join(at, 'cgroup.controllers'), 'utf8');
    expect(rowOf('cgroups')!.detail).toBe(expectedCgroupsDetail(mounts, v1ControllerNames(fs.readFileSync('/proc/cgroups', 'utf8')), controllers));
    // The seccomp actions vkseccomp --probe found are the kernel's own list.
    const avail = fs.readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8').trim().split(/\s+/).sort();
    const found = /^actions ([a-z_,]+);/.exec(rowOf('seccomp')!.detail)![1].split(',').sort();
    expect(found).toEqual(avail);
    expect(rowOf('native-helpers')!.detail).toContain(path.join(repoRoot(), 'build'));
  });

  it.each([
    [
      'pure v2 (stock Debian 12)',
      'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0',
      '30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
      { '/sys/fs/cgroup': 'cpuset cpu io memory hugetlb pids rdma misc\n' },
    ],
    [
      'hybrid (these machines)',
      ['cpu,cpuacct', 'cpuset', 'memory', 'devices', 'pids', 'name=systemd'].map((c) => `cgroup /sys/fs/cgroup/${c.replace('name=', '')} cgroup rw,nosuid,${c} 0 0\n`).join('') +
        'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0',
      ['cpu,cpuacct', 'cpuset', 'memory', 'devices', 'pids', 'name=systemd'].map((c, i) => `${31 + i} 25 0:${27 + i} / /sys/fs/cgroup/${c.replace('name=', '')} rw - cgroup cgroup rw,${c}\n`).join('') +
        '40 25 0:40 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate',
      { '/sys/fs/cgroup/unified': '' },
    ],
  ])('the expected cgroups detail follows the host mode: %s', (_mode, mounts, mountinfo, files: Record<string, string>) => {
    // The same independent reading as above, on a host of the other mode, agrees with check.
    const names = ['cpuset', 'cpu', 'cpuacct', 'blkio', 'memory', 'devices', 'freezer', 'pids', 'hugetlb', 'misc'];
    expect(expectedCgroupsDetail(mounts, names, (at) => files[at] ?? '')).toBe(cgroupRow(mountinfo, (at) => files[at]).detail);
  });

  it('containerd not running: warnings, not failures, and exit 0 when nothing else fails', () => {
    expect(rowOf('containerd')).toEqual({
      name: 'containerd',
      status: 'warn',
      detail: `no containerd answers at ${nowhere} (connect ENOENT ${nowhere}); vkernel still works as an OCI runtime`,
    });
    expect(rowOf('shim-protocol')).toMatchObject({ status: 'pass', detail: expect.stringMatching(/^ttrpc, bootstrap version 2 \(negotiated\); start answers unix:\/\/<socket>;/) });
    // Whether the shim is installed and the system config has an entry depends on the machine.
    for (const name of ['shim-binary', 'containerd-config']) expect(rowOf(name)!.status).not.toBe('fail');
    expect(report.summary.fail).toBe(0);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
  });

  it('the table: a header, one line per row, the summary; same exit code', async () => {
    const r = await runRuntime(['check', '--address', nowhere], { runtime: 'vkernel' });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME +STATUS +DETAIL$/);
    expect(lines.slice(1, 1 + report.rows.length).map((l) => l.split(/\s+/).slice(0, 2))).toEqual(report.rows.map((x) => [x.name, x.status.toUpperCase()]));
    expect(lines.at(-1)).toBe(`${report.summary.status.toUpperCase()}: ${report.summary.pass} passed, ${report.summary.warn} warnings, ${report.summary.fail} failed`);
    expect(r.code).toBe(0);
  });

  it('a failing row exits 1 (vkseccomp missing)', async () => {
    const r = await runRuntime(['check', '--address', nowhere, '--format', 'json'], { runtime: 'vkernel', env: { VKERNEL_SECCOMP: '/nonexistent/vkseccomp' } });
    const rows = (JSON.parse(r.stdout) as CheckReport).rows;
    expect(rows.find((x) => x.name === 'seccomp')).toMatchObject({ status: 'fail', detail: expect.stringContaining('/nonexistent/vkseccomp') });
    expect(rows.find((x) => x.name === 'native-helpers')).toMatchObject({ status: 'fail', detail: 'missing: /nonexistent/vkseccomp (make native)' });
    expect(r.code).toBe(1);
  });

  it.each([
    [['check', '--format', 'xml'], '--format: must be table or json (got \\"xml\\")'],
    [['containerd-config', '--version', 'abc'], '--version: must be MAJOR.MINOR, e.g. 1.7 (got \\"abc\\")'],
    [['containerd-config', '--version', '1.5'], '--version: containerd 1.5 is not supported (1.6, 1.7 or 2.x) (got \\"1.5\\")'],
    [['containerd-config', '--protocol', 'quic'], '--protocol: must be auto, grpc or ttrpc (got \\"quic\\")'],
  ])('bad input %j: one error line naming the flag and value, exit 1', async (args, message) => {
    const r = await runRuntime(args, { runtime: 'vkernel' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`msg="${message}"`);
  });
});
