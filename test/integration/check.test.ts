// `vkernel check` on this host (host-notes.md: kernel 6.18, cgroup v1 hybrid with only hugetlb
// in the v2 tree at /sys/fs/cgroup/unified, seccomp user notification, FUSE, overlayfs, user
// namespaces): every host row passes, each detail agrees with an independent reading of the
// kernel, the JSON has the documented shape, and warnings alone exit 0. containerd is pointed
// at a socket nobody serves, so its rows are the "not running" ones on any machine; the
// passing containerd rows are checked in containerd-config.test.ts against real containerds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeIf, repoRoot, requireRoot, requireRuntime, runRuntime, type RunResult } from '../harness';
import type { CheckReport } from '../../runtime/check';

const ok = requireRoot() && requireRuntime('vkernel');

const HOST_ROWS = ['kernel', 'cgroups', 'seccomp', 'seccomp-notify', 'seccomp-wait-killable-recv', 'fuse', 'overlayfs', 'user-namespaces', 'native-helpers'];
const CONTAINERD_ROWS = ['containerd', 'shim-protocol', 'shim-binary', 'containerd-config'];

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
    expect(rowOf('cgroups')!.detail).toMatch(/^hybrid; v1: [a-z_,]*\bmemory\b[a-z_,]*; v2 \/sys\/fs\/cgroup\/unified: hugetlb$/);
    // The seccomp actions vkseccomp --probe found are the kernel's own list.
    const avail = fs.readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8').trim().split(/\s+/).sort();
    const found = /^actions ([a-z_,]+);/.exec(rowOf('seccomp')!.detail)![1].split(',').sort();
    expect(found).toEqual(avail);
    expect(rowOf('native-helpers')!.detail).toContain(path.join(repoRoot(), 'build'));
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
