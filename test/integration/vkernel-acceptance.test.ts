// Issue 6 acceptance on real containers through the vkernel CLI: real runtimes inside
// (python3, node, glibc getconf, coreutils from the host's /usr), a cpuset-only limit, the
// container's uptime, live `vkernel update` of files and runtimes, killing the supervisor
// (vkfs keeper/worker, vkagent) under a reading workload, and no leaks after delete or
// SIGKILL. What vkernel-view.test.ts / vkernel-syscalls.test.ts already cover (the view on
// a bare cgroup, sysinfo/nproc after update, runc + listenerPath) is not repeated here.
// The shim path is in vkernel-shim.test.ts.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath } from '../../runtime/paths';
import type { LinuxResources, Spec } from '../../runtime/spec/types';
import { agentPids } from '../../runtime/vkernel/syscalls';
import { supervisorPids } from '../../runtime/vkernel/view';
import {
  describeIf,
  hasBinary,
  hasCgroupV1,
  makeBundle,
  parseKeyValues,
  requireFixtures,
  requireRoot,
  requireRuntime,
  requirement,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeRoot,
  vkernelCli,
  withLeakCheck,
  type Bundle,
} from '../harness';
import { alive, fuseMounts, LOAD_LOOP as LOOP, loadLoop, pgrep, until, type LoadLoop } from './helpers/vkernel';

const MiB = 1024 * 1024;
const HOST_CPUS = os.cpus().length;
const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime('vkernel') &&
  requirement(fs.existsSync(buildPath('vkfs')) && fs.existsSync(buildPath('vkagent')), 'build/vkfs and build/vkagent (make native)') &&
  requirement(fs.existsSync('/dev/fuse'), '/dev/fuse is missing') &&
  requirement(process.arch === 'x64', 'the notify filter is x86_64 only') &&
  requirement(hasCgroupV1('memory') && hasCgroupV1('cpuset'), 'cgroup v1 memory and cpuset controllers') &&
  requirement(HOST_CPUS >= 2, 'CPU-count tests need a host with at least 2 CPUs') &&
  requirement(['/usr/bin/python3', '/usr/bin/node', '/usr/bin/getconf', '/usr/bin/nproc'].every((f) => fs.existsSync(f)), 'python3, node, getconf and nproc in the host /usr');

jest.setTimeout(60_000);

const LIMITS: LinuxResources = { memory: { limit: 256 * MiB }, cpu: { quota: 50000, period: 100000 } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const stateDir = (id: string) => path.join(runtimeRoot(), id);
const viewDir = (id: string) => path.join(stateDir(id), 'view');
const agentDir = (id: string) => path.join(stateDir(id), 'agent');

/** A "keeper worker standby" pidfile (positions kept, unlike agentPids; zeros when missing). */
function pidTrio(file: string): { keeper: number; worker: number; standby: number } {
  try {
    const [keeper, worker, standby] = fs.readFileSync(file, 'utf8').trim().split(/\s+/).map(Number);
    return { keeper, worker, standby };
  } catch {
    return { keeper: 0, worker: 0, standby: 0 };
  }
}
const vkfsPair = (id: string) => pidTrio(path.join(viewDir(id), 'vkfs.pid'));
const agentTrio = (id: string) => pidTrio(path.join(agentDir(id), 'vkagent.pid'));

/** All three of the agent alive, none of them in `old`. */
function agentRenewed(id: string, old: number[]): boolean {
  const now = agentTrio(id);
  return [now.keeper, now.worker, now.standby].every((p) => p > 0 && alive(p) && !old.includes(p));
}

/**
 * The test rootfs with the host's /usr bound read-only over /usr (merged-/usr Debian: /lib
 * and /lib64 become symlinks into it, so the dynamic loader and libraries resolve). The
 * fixture's busybox stays in /bin; `nproc`, `getconf`, python3 and node come from the host.
 */
async function hostUsrBundle(
  args: string[],
  resources: LinuxResources,
  annotations: Record<string, string> = {},
  opts: { runtime?: 'runc'; mutate?: (s: Spec) => void } = {},
): Promise<Bundle> {
  const b = await makeBundle({
    args,
    runtime: opts.runtime,
    mutate: (s: Spec) => {
      opts.mutate?.(s);
      s.linux!.resources = { ...s.linux!.resources, ...resources };
      s.annotations = { ...(s.annotations ?? {}), ...annotations };
      s.mounts!.push({ destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
      s.process!.env = [...(s.process!.env ?? []), 'HOME=/tmp'];
    },
  });
  for (const l of ['lib', 'lib64']) {
    const p = path.join(b.rootfs, l);
    if (!fs.existsSync(p)) fs.symlinkSync(`usr/${l}`, p);
  }
  return b;
}

async function runOk(b: Bundle): Promise<Record<string, string>> {
  const r = await runBundle(b);
  if (r.code !== 0) throw new Error(`container failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return parseKeyValues(r.stdout);
}

/** One key=value per line: what each real runtime and tool inside the container reads. */
const PROBE = [
  `/usr/bin/python3 -c 'import os; print("py_cpu_count=%d" % os.cpu_count()); print("py_affinity=%d" % len(os.sched_getaffinity(0)))'`,
  `/usr/bin/node -e 'const os = require("os"); console.log("node_parallelism=" + os.availableParallelism()); console.log("node_totalmem=" + os.totalmem()); console.log("node_cpus=" + os.cpus().length)'`,
  'echo conf=$(getconf _NPROCESSORS_CONF)',
  'echo onln=$(getconf _NPROCESSORS_ONLN)',
  'echo phys=$(( $(getconf _PHYS_PAGES) * $(getconf PAGESIZE) ))',
  'echo nproc=$(nproc)',
  'echo bb_nproc=$(busybox nproc)',
  "echo meminfo=$(busybox awk '/^MemTotal:/{print $2}' /proc/meminfo)",
  "echo free=$(busybox free | busybox awk '/^Mem:/{print $2}')",
  'echo online=$(cat /sys/devices/system/cpu/online)',
  'echo processors=$(grep -c ^processor /proc/cpuinfo)',
].join('\n');

const hostMemKiB = () => Number(/^MemTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);

describeIf(ok)('vkernel acceptance (CLI): real runtimes, cpusets, uptime, update', () => {
  it('python3, node, glibc getconf and coreutils nproc read 1 CPU and 256 MiB under quota 50000/100000', () =>
    withLeakCheck(async () => {
      const kv = await runOk(await hostUsrBundle(['/bin/sh', '-c', PROBE], LIMITS));
      expect(kv).toMatchObject({
        py_cpu_count: '1', // 3.11: sysconf(_SC_NPROCESSORS_ONLN) → /sys/devices/system/cpu/online
        py_affinity: '1', // sched_getaffinity (syscall layer)
        node_parallelism: '1', // libuv: sched_getaffinity
        node_totalmem: String(256 * MiB), // libuv: /proc/meminfo
        node_cpus: '1', // libuv: /proc/cpuinfo + /proc/stat
        conf: '1',
        onln: '1',
        phys: String(256 * MiB), // glibc _PHYS_PAGES: sysinfo()
        nproc: '1',
        bb_nproc: '1',
        meminfo: '262144',
        free: '262144', // busybox free: sysinfo()
        online: '0',
        processors: '1',
      });
    }));

  it.each([['io.vkernel.view', 'off'], ['io.vkernel.mode', 'off']])('with %s=%s the syscall readers see the host', (key, value) =>
    withLeakCheck(async () => {
      const kv = await runOk(await hostUsrBundle(['/bin/sh', '-c', PROBE], LIMITS, { [key]: value }));
      const host = String(HOST_CPUS);
      // mode=off keeps the file view and drops only the syscall layer.
      const files = key === 'io.vkernel.view';
      expect(kv).toMatchObject({
        py_affinity: host,
        node_parallelism: host,
        nproc: host,
        bb_nproc: host,
        phys: String(os.totalmem()),
        free: String(os.totalmem() / 1024),
        py_cpu_count: files ? host : '1',
        onln: files ? host : '1',
        conf: files ? host : '1',
        node_cpus: files ? host : '1',
        meminfo: files ? String(hostMemKiB()) : '262144',
        node_totalmem: files ? String(hostMemKiB() * 1024) : String(256 * MiB),
        online: files ? `0-${HOST_CPUS - 1}` : '0',
      });
    }),
  );

  it('a cpuset of CPU 1 alone (no quota) reads 1 CPU, renumbered 0, with host CPU 1\'s own data', () =>
    withLeakCheck(async () => {
      const script = [
        PROBE,
        'echo possible=$(cat /sys/devices/system/cpu/possible)',
        'echo present=$(cat /sys/devices/system/cpu/present)',
        'echo cpudirs=$(ls /sys/devices/system/cpu | grep "^cpu[0-9]" | tr "\\n" ,)',
        "echo procline=$(grep ^processor /proc/cpuinfo | tr -d ' \\t')",
        "echo apicid=$(grep ^apicid /proc/cpuinfo | busybox awk '{print $3}')",
        'echo core_id=$(cat /sys/devices/system/cpu/cpu0/topology/core_id)',
        'echo statcpus=$(grep "^cpu[0-9]" /proc/stat | busybox awk \'{print $1}\' | tr "\\n" ,)',
        'echo cpuset=$(cat /sys/fs/cgroup/cpuset/cpuset.effective_cpus 2>/dev/null || cat /sys/fs/cgroup/cpuset.cpus.effective)',
      ].join('\n');
      const kv = await runOk(await hostUsrBundle(['/bin/sh', '-c', script], { cpu: { cpus: '1', mems: '0' } }));
      const hostBlock = fs
        .readFileSync('/proc/cpuinfo', 'utf8')
        .split('\n\n')
        .find((b) => /^processor\s*:\s*1$/m.test(b))!;
      expect(kv).toMatchObject({
        cpuset: '1', // the container's own cgroupfs still says CPU 1: the view does not contradict it
        py_cpu_count: '1',
        py_affinity: '1',
        node_parallelism: '1',
        node_cpus: '1',
        conf: '1',
        onln: '1',
        nproc: '1',
        online: '0', // docs/vkernel-view.md "CPUs": the visible CPUs are renumbered 0..N-1
        possible: '0',
        present: '0',
        cpudirs: 'cpu0,',
        procline: 'processor:0',
        statcpus: 'cpu0,',
        apicid: /^apicid\s*:\s*(\d+)$/m.exec(hostBlock)![1], // cpu0's block is host CPU 1's
        core_id: fs.readFileSync('/sys/devices/system/cpu/cpu1/topology/core_id', 'utf8').trim(),
      });
    }));

  it('/proc/uptime and sysinfo().uptime count from the container start, not the host boot', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: ['/bin/sh', '-c', 'sleep 2; echo uptime=$(cut -d" " -f1 /proc/uptime) idle=$(cut -d" " -f2 /proc/uptime); /vktest sysinfo'],
        mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }),
      });
      const r = await runBundle(b);
      expect(r.code).toBe(0);
      // "uptime=U idle=I" then vktest's lines, whose uptime= (sysinfo, whole seconds) comes last
      const [, up, idle] = /^uptime=(\S+) idle=(\S+)$/m.exec(r.stdout)!.map(Number);
      const sysinfoUptime = Number(parseKeyValues(r.stdout).uptime);
      const hostUp = Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
      expect(up).toBeGreaterThanOrEqual(2);
      expect(up).toBeLessThan(10);
      expect(idle).toBeLessThanOrEqual(up * 1 + 0.01); // one visible CPU
      expect(hostUp).toBeGreaterThan(60); // otherwise "far below the host's" proves nothing
      expect(sysinfoUptime).toBeGreaterThanOrEqual(2);
      expect(sysinfoUptime).toBeLessThan(10);
    }));

  it('vkernel update 0.5 → 2 CPUs and 256 → 512 MiB: files, getconf, python3 and node follow on the next read', () =>
    withLeakCheck(async () => {
      const b = await hostUsrBundle(['/vktest', 'sleep', '120'], LIMITS);
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const probe = async () => parseKeyValues((await runRuntimeOk(['exec', b.id, '/bin/sh', '-c', PROBE])).stdout);
      expect(await probe()).toMatchObject({ meminfo: '262144', online: '0', processors: '1', onln: '1', conf: '1', nproc: '1', node_parallelism: '1', node_totalmem: String(256 * MiB), py_cpu_count: '1' });
      await runRuntimeOk(['update', '--memory', String(512 * MiB), '--cpu-quota', '200000', '--cpu-period', '100000', b.id]);
      expect(await probe()).toMatchObject({
        meminfo: '524288',
        free: '524288',
        phys: String(512 * MiB),
        online: '0-1',
        processors: '2',
        onln: '2',
        conf: '2',
        nproc: '2',
        py_cpu_count: '2',
        py_affinity: '2',
        node_parallelism: '2',
        node_cpus: '2',
        node_totalmem: String(512 * MiB),
      });
      // And back down: a 1.5-CPU quota reads 2 on this 2-CPU host, 0.5 reads 1.
      await runRuntimeOk(['update', '--cpu-quota', '50000', b.id]);
      expect(await probe()).toMatchObject({ online: '0', nproc: '1', node_parallelism: '1' });
      await runRuntimeOk(['delete', '--force', b.id]);
    }));
});

// ---- sysinfo() and the files: one source ----

/** sysinfo's loads[i] (1 << 16 fixed point) printed as /proc/loadavg prints avenrun (FSHIFT 11, +1/200, truncated). */
function kernelLoad(raw: number): string {
  const a = Math.floor(raw / 32) + Math.floor(2048 / 200);
  return `${Math.floor(a / 2048)}.${String(Math.floor(((a % 2048) * 100) / 2048)).padStart(2, '0')}`;
}

/**
 * /proc/loadavg, then sysinfo(), then /proc/loadavg again, until the two file reads agree
 * (no 5 s sample fell in between): "pair=<3 loads>|loads_raw=a,b,c".
 */
const LOAD_PAIR = [
  'for i in 1 2 3 4 5 6 7 8 9 10; do',
  "  a=$(cut -d' ' -f1-3 /proc/loadavg); s=$(/vktest sysinfo | grep ^loads_raw=); b=$(cut -d' ' -f1-3 /proc/loadavg)",
  '  if [ "$a" = "$b" ]; then echo "pair=$a|$s"; break; fi',
  'done',
].join('\n');

function parsePair(stdout: string): { file: string[]; sysinfo: string[] } {
  const m = /^pair=(\S+ \S+ \S+)\|loads_raw=(\d+),(\d+),(\d+)$/m.exec(stdout);
  if (!m) throw new Error(`no load pair in:\n${stdout}`);
  return { file: m[1].split(' '), sysinfo: [m[2], m[3], m[4]].map((r) => kernelLoad(Number(r))) };
}

describeIf(ok)('vkernel acceptance (CLI): sysinfo() agrees with the view', () => {
  it('sysinfo().loads are /proc/loadavg\'s 1/5/15 values (vkfs publishes them; the agent does not sample on its own)', () =>
    withLeakCheck(async () => {
      // One spinning task for > 2 samples: loads well above 0, so agreeing is not 0 = 0.
      const b = await makeBundle({
        args: ['/bin/sh', '-c', `/vktest spin 30 & sleep 11\n${LOAD_PAIR}\nkill %1`],
        mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }),
      });
      const r = await runBundle(b);
      expect(r.code).toBe(0);
      const { file, sysinfo } = parsePair(r.stdout);
      expect(Number(file[0])).toBeGreaterThan(0);
      expect(sysinfo).toEqual(file);
    }));

  it('the loads survive a restart of the agent\'s worker and stay /proc/loadavg\'s', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'spin', '60'], mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }) });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      await sleep(6000);
      const before = parsePair((await runRuntimeOk(['exec', b.id, '/bin/sh', '-c', LOAD_PAIR])).stdout);
      expect(before.sysinfo).toEqual(before.file);
      const { worker } = agentTrio(b.id);
      process.kill(worker, 'SIGKILL');
      expect(await until(() => agentTrio(b.id).worker !== worker && alive(agentTrio(b.id).worker))).toBe(true);
      const after = parsePair((await runRuntimeOk(['exec', b.id, '/bin/sh', '-c', LOAD_PAIR])).stdout);
      expect(Number(after.file[0])).toBeGreaterThan(0);
      expect(after.sysinfo).toEqual(after.file);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('/proc/swaps, /proc/diskstats and /proc/pressure/* are the view\'s; sysinfo swap agrees with meminfo, swaps and the limit', () =>
    withLeakCheck(async () => {
      const script = [
        'echo swaps_lines=$(cat /proc/swaps | wc -l)',
        "echo swaps_dev=$(busybox awk 'NR==2{print $1\"/\"$2}' /proc/swaps)",
        "echo swaps_kb=$(busybox awk 'NR==2{print $3}' /proc/swaps)",
        "echo swaps_used_kb=$(busybox awk 'NR==2{print $4}' /proc/swaps)",
        "echo swaptotal_kb=$(busybox awk '/^SwapTotal:/{print $2}' /proc/meminfo)",
        "echo swapfree_kb=$(busybox awk '/^SwapFree:/{print $2}' /proc/meminfo)",
        'echo diskstats_lines=$(cat /proc/diskstats | wc -l)',
        "echo diskstats_fields=$(busybox awk '{print NF}' /proc/diskstats | sort -u | tr '\\n' ,)",
        'for f in /proc/pressure/*; do echo "pressure_$(basename $f)=$(head -1 $f | cut -d" " -f1)"; done',
        "echo pressure_mounts=$(grep ' /proc/pressure/' /proc/self/mountinfo | grep -c fuse.vkfs)",
        "echo swaps_diskstats_mounts=$(grep -E ' /proc/(swaps|diskstats) ' /proc/self/mountinfo | grep -c fuse.vkfs)",
        '/vktest sysinfo',
      ].join('\n');
      const swapLimit = 512 * MiB; // memory+swap: 256 MiB of swap at most
      const b = await makeBundle({
        args: ['/bin/sh', '-c', script],
        mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS, memory: { limit: 256 * MiB, swap: swapLimit } }),
      });
      const r = await runBundle(b);
      if (r.code !== 0) throw new Error(`container failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      const kv = parseKeyValues(r.stdout);
      const hostSwapKiB = Number(/^SwapTotal:\s+(\d+) kB$/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);
      const wantSwapKiB = Math.min((swapLimit - 256 * MiB) / 1024, hostSwapKiB);
      // The swap the container may use: memsw − memory, capped by the host's (0 on a host
      // without swap: then /proc/swaps is the header alone, as the kernel prints it).
      if (wantSwapKiB > 0) {
        expect(kv.swaps_lines).toBe('2'); // header + one "none virtual" device
        expect(kv.swaps_dev).toBe('none/virtual');
        expect(Number(kv.swaps_kb)).toBe(wantSwapKiB);
      } else {
        expect(kv.swaps_lines).toBe('1');
      }
      const swapUsedKiB = Number(kv.swaps_used_kb || '0');
      expect(Number(kv.swaptotal_kb)).toBe(wantSwapKiB);
      expect(Number(kv.swapfree_kb)).toBe(wantSwapKiB - swapUsedKiB);
      // sysinfo (mem_unit 1: bytes) = the same swap as the files
      expect(Number(kv.totalswap)).toBe(wantSwapKiB * 1024);
      expect(Number(kv.freeswap)).toBe(Number(kv.swapfree_kb) * 1024);
      expect(Number(kv.totalram)).toBe(256 * MiB);
      // diskstats: the kernel's 20-field (or 14/18) lines, only devices the container did I/O on
      expect(kv.diskstats_fields === '' || /^(14|18|20)(,(14|18|20))*,$/.test(kv.diskstats_fields)).toBe(true);
      const hostLines = fs.readFileSync('/proc/diskstats', 'utf8').trim().split('\n').length;
      expect(Number(kv.diskstats_lines)).toBeLessThanOrEqual(hostLines);
      // /proc/swaps and /proc/diskstats are the view's files (not the host's, which the
      // checks above could not tell apart on a host without swap)
      expect(kv.swaps_diskstats_mounts).toBe('2');
      // every /proc/pressure file the host has is mounted from the view and readable
      const hostPressure = fs.readdirSync('/proc/pressure').sort();
      expect(Number(kv.pressure_mounts)).toBe(hostPressure.length);
      for (const f of hostPressure) expect(kv[`pressure_${f}`]).toMatch(/^(some|full)$/);
    }));
});

// ---- live policy (vkernel update --annotation), per-syscall policy, affinity by pid ----

/** MemTotal of /proc/meminfo, sysinfo's totalram and sched_getaffinity's count, read in the container. */
const POLICY_PROBE = "echo meminfo=$(busybox awk '/^MemTotal:/{print $2}' /proc/meminfo); /vktest sysinfo; echo nproc=$(/vktest nproc)";

describeIf(ok)('vkernel acceptance (CLI): policy changes on a running container', () => {
  it('vkernel update --annotation io.vkernel.view=off shows the host on the next read (files and syscalls), =on the limits again', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '120'], mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }) });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const probe = async () => parseKeyValues((await runRuntimeOk(['exec', b.id, '/bin/sh', '-c', POLICY_PROBE])).stdout);
      const virtual = { meminfo: '262144', totalram: String(256 * MiB), nproc: '1' };
      const host = { meminfo: String(hostMemKiB()), totalram: String(os.totalmem()), nproc: String(HOST_CPUS) };
      expect(await probe()).toMatchObject(virtual);
      await runRuntimeOk(['update', '--annotation', 'io.vkernel.view=off', b.id]);
      expect(await probe()).toMatchObject(host);
      const stored = JSON.parse(fs.readFileSync(path.join(stateDir(b.id), 'config.json'), 'utf8'));
      expect(stored.annotations['io.vkernel.view']).toBe('off');
      await runRuntimeOk(['update', '--annotation', 'io.vkernel.view=on', b.id]);
      expect(await probe()).toMatchObject(virtual);
      // A bad value is refused before anything changes, naming the annotation and the value.
      const bad = await runRuntime(['update', '--annotation', 'io.vkernel.syscalls=sysinfo,uname', b.id]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain('annotation io.vkernel.syscalls');
      expect(bad.stderr).toContain('sysinfo,uname');
      expect(bad.stderr).toMatch(/unknown syscall \\*"uname/);
      const typo = await runRuntime(['update', '--annotation', 'io.vkernel.veiw=off', b.id]);
      expect(typo.code).not.toBe(0);
      expect(typo.stderr).toContain('io.vkernel.veiw');
      expect(JSON.parse(fs.readFileSync(path.join(stateDir(b.id), 'config.json'), 'utf8')).annotations['io.vkernel.syscalls']).toBeUndefined();
      expect(await probe()).toMatchObject(virtual);
      // A refused limit in the same update leaves the policy as it was (checked first, written last).
      const refused = await runRuntime(['update', '--annotation', 'io.vkernel.view=off', '--cpuset-cpus', '0-999', b.id]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('cpus');
      expect(JSON.parse(fs.readFileSync(path.join(stateDir(b.id), 'config.json'), 'utf8')).annotations['io.vkernel.view']).toBe('on');
      expect(await probe()).toMatchObject(virtual);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('io.vkernel.syscalls picks the virtualized syscalls, at create and live; the others answer as the host', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: ['/vktest', 'sleep', '120'],
        mutate: (s) => {
          s.linux!.resources = { ...s.linux!.resources, ...LIMITS };
          s.annotations = { ...(s.annotations ?? {}), 'io.vkernel.syscalls': 'sysinfo' };
        },
      });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const probe = async () => parseKeyValues((await runRuntimeOk(['exec', b.id, '/bin/sh', '-c', POLICY_PROBE])).stdout);
      expect(await probe()).toMatchObject({ meminfo: '262144', totalram: String(256 * MiB), nproc: String(HOST_CPUS) });
      await runRuntimeOk(['update', '--annotation', 'io.vkernel.syscalls=sched_getaffinity', b.id]);
      expect(await probe()).toMatchObject({ meminfo: '262144', totalram: String(os.totalmem()), nproc: '1' });
      await runRuntimeOk(['update', '--annotation', 'io.vkernel.syscalls=all', b.id]);
      expect(await probe()).toMatchObject({ meminfo: '262144', totalram: String(256 * MiB), nproc: '1' });
      await runRuntimeOk(['update', '--annotation', 'io.vkernel.syscalls=none', b.id]);
      expect(await probe()).toMatchObject({ meminfo: '262144', totalram: String(os.totalmem()), nproc: String(HOST_CPUS) });
      // KEY= removes the annotation: the default (all) again
      await runRuntimeOk(['update', '--annotation', 'io.vkernel.syscalls=', b.id]);
      expect(await probe()).toMatchObject({ totalram: String(256 * MiB), nproc: '1' });
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('io.vkernel.syscalls=none at create: the syscalls answer as the host (no filter), the files stay virtual', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: ['/bin/sh', '-c', POLICY_PROBE],
        mutate: (s) => {
          s.linux!.resources = { ...s.linux!.resources, ...LIMITS };
          s.annotations = { ...(s.annotations ?? {}), 'io.vkernel.syscalls': 'none' };
        },
      });
      const r = await runBundle(b);
      expect(r.code).toBe(0);
      expect(parseKeyValues(r.stdout)).toMatchObject({ meminfo: '262144', totalram: String(os.totalmem()), nproc: String(HOST_CPUS) });
    }));

  it('a create with a bad io.vkernel.syscalls fails naming the annotation and the value', async () => {
    const b = await makeBundle({ args: ['/bin/true'], mutate: (s) => void (s.annotations = { ...(s.annotations ?? {}), 'io.vkernel.syscalls': 'sysinfo;open' }) });
    const r = await runBundle(b);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('annotation io.vkernel.syscalls');
    expect(r.stderr).toContain('sysinfo;open');
  });

  it('python3: sched_getaffinity of its own pid or tid (any thread) is the container\'s; another pid is passed through', () =>
    withLeakCheck(async () => {
      const py = [
        'import os, threading',
        'n = lambda p: len(os.sched_getaffinity(p))',
        'print("zero=%d" % n(0))',
        'print("own_pid=%d" % n(os.getpid()))',
        'print("own_tid=%d" % n(threading.get_native_id()))',
        'print("parent=%d" % n(os.getppid()))',
        'out = {}',
        'def t(): out["thread_tid"] = n(threading.get_native_id()); out["thread_pid"] = n(os.getpid()); out["tid_differs"] = int(threading.get_native_id() != os.getpid())',
        'th = threading.Thread(target=t); th.start(); th.join()',
        'for k, v in sorted(out.items()): print("%s=%d" % (k, v))',
      ].join('\n');
      // sh stays pid 1 (the "another pid" case), python3 is its child
      const kv = await runOk(await hostUsrBundle(['/bin/sh', '-c', `/usr/bin/python3 -c '${py}'; true`], LIMITS));
      expect(kv).toMatchObject({ zero: '1', own_pid: '1', own_tid: '1', thread_tid: '1', thread_pid: '1', tid_differs: '1', parent: String(HOST_CPUS) });
    }));
});

// ---- the supervisor killed under load ----

async function loopContainer(): Promise<LoadLoop & { b: Bundle }> {
  const b = await makeBundle({ args: ['/bin/sh', '-c', LOOP], mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }) });
  await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
  const loop = loadLoop(b.rootfs);
  expect(await loop.advance()).toBe(true);
  return { b, ...loop };
}

function kill(pid: number): void {
  expect(pid).toBeGreaterThan(0);
  process.kill(pid, 'SIGKILL');
}

describeIf(ok)('vkernel acceptance (CLI): the supervisor killed while the workload reads', () => {
  it('vkfs worker, vkfs keeper, agent worker, agent keeper killed in turn: no error, the view comes back each time', () =>
    withLeakCheck(async () => {
      const { b, errors, advance } = await loopContainer();
      const id = b.id;
      for (let round = 0; round < 3; round++) {
        const { worker } = vkfsPair(id);
        kill(worker);
        expect(await until(() => vkfsPair(id).worker !== worker && alive(vkfsPair(id).worker))).toBe(true);
        expect(await advance()).toBe(true);
        expect(errors()).toEqual([]);
      }
      const { keeper, worker } = vkfsPair(id);
      kill(keeper); // the worker takes over and forks a new worker
      expect(await until(() => vkfsPair(id).keeper === worker && alive(vkfsPair(id).worker) && !alive(keeper))).toBe(true);
      expect(await advance()).toBe(true);
      kill(vkfsPair(id).worker);
      expect(await advance()).toBe(true);
      expect(errors()).toEqual([]);

      let { keeper: akeeper, worker: aworker } = agentTrio(id);
      for (let round = 0; round < 3; round++) {
        kill(aworker);
        const old = aworker;
        // the keeper forks a new worker and rewrites its pidfile
        expect(await until(() => ({ keeper: akeeper, worker: aworker } = agentTrio(id)).worker !== old && alive(aworker) && agentPids(agentDir(id)).length === 3)).toBe(true);
        expect(await advance()).toBe(true);
        expect(errors()).toEqual([]);
      }
      const { standby: astandby } = agentTrio(id);
      kill(akeeper); // the standby takes over and adopts the worker, which keeps serving
      expect(await until(() => agentTrio(id).keeper === astandby && agentRenewed(id, [akeeper]))).toBe(true);
      expect(agentTrio(id).worker).toBe(aworker);
      expect(await advance()).toBe(true);
      expect(errors()).toEqual([]);
      // keeper, worker, standby (the standby of the killed keeper exits once it sees the takeover)
      expect(await until(() => supervisorPids(viewDir(id)).length === 3)).toBe(true);
      await runRuntimeOk(['delete', '--force', id]);
      expect(await until(() => !alive(aworker))).toBe(true);
    }));

  it('vkfs keeper and worker killed at the same instant: no ENOTCONN, the view comes back', () =>
    withLeakCheck(async () => {
      const { b, errors, advance } = await loopContainer();
      for (let round = 0; round < 3; round++) {
        const { keeper, worker } = vkfsPair(b.id);
        process.kill(keeper, 'SIGKILL');
        process.kill(worker, 'SIGKILL');
        expect(await until(() => !alive(keeper) && !alive(worker))).toBe(true);
        expect(await advance()).toBe(true);
        expect(errors()).toEqual([]);
        // the standby took over and has a worker and a standby of its own again
        expect(await until(() => {
          const now = vkfsPair(b.id);
          return now.keeper !== keeper && [now.keeper, now.worker, now.standby].every((p) => p > 0 && alive(p));
        })).toBe(true);
      }
      await runRuntimeOk(['delete', '--force', b.id]);
    }));

  it('agent keeper and worker killed at the same instant, then the new keeper, then its worker: no sysinfo error, the view comes back (a call in flight fails open, once)', () =>
    withLeakCheck(async () => {
      const { b, errors, advance } = await loopContainer();
      const id = b.id;
      const gone: number[] = [];
      for (let round = 0; round < 3; round++) {
        const { keeper, worker, standby } = agentTrio(id);
        expect(agentPids(agentDir(id))).toEqual([keeper, worker, standby]);
        process.kill(keeper, 'SIGKILL');
        process.kill(worker, 'SIGKILL');
        gone.push(keeper, worker);
        // the standby becomes the keeper, with a new worker and a new standby
        expect(await until(() => agentTrio(id).keeper === standby && agentRenewed(id, gone))).toBe(true);
        expect(await advance()).toBe(true);
        expect(errors()).toEqual([]);
      }
      // The keeper alone (its standby adopts the worker), and later that worker.
      const { keeper, worker, standby } = agentTrio(id);
      kill(keeper);
      gone.push(keeper);
      expect(await until(() => agentTrio(id).keeper === standby && agentTrio(id).worker === worker && agentRenewed(id, gone))).toBe(true);
      expect(await advance()).toBe(true);
      kill(worker);
      gone.push(worker);
      expect(await until(() => agentRenewed(id, gone))).toBe(true);
      expect(await advance()).toBe(true);
      expect(errors()).toEqual([]);
      // The standby alone: the keeper forks another one.
      const before = agentTrio(id);
      kill(before.standby);
      expect(await until(() => agentTrio(id).keeper === before.keeper && agentTrio(id).standby !== before.standby && alive(agentTrio(id).standby))).toBe(true);
      expect(await advance()).toBe(true);
      expect(errors()).toEqual([]);
      // The view is still the container's (not the host's) after all of it.
      const kv = parseKeyValues((await runRuntimeOk(['exec', id, '/vktest', 'sysinfo'])).stdout);
      expect(kv.totalram).toBe(String(256 * MiB));
      const last = agentPids(agentDir(id));
      expect(last).toHaveLength(3);
      const socket = fs.readFileSync(path.join(agentDir(id), 'vkagent.socket'), 'utf8');
      await runRuntimeOk(['delete', '--force', id]);
      expect(await until(() => last.every((p) => !alive(p)))).toBe(true);
      expect(pgrep(`vkagent serve --socket ${socket}`)).toEqual([]);
    }));

  it('a SIGTERM to the agent keeper stops all three (the standby does not take over)', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '60'], mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }) });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const pids = agentPids(agentDir(b.id));
      expect(pids).toHaveLength(3);
      const socket = fs.readFileSync(path.join(agentDir(b.id), 'vkagent.socket'), 'utf8');
      process.kill(pids[0], 'SIGTERM');
      expect(await until(() => pids.every((p) => !alive(p)))).toBe(true);
      await sleep(300);
      expect(pgrep(`vkagent serve --socket ${socket}`)).toEqual([]);
      expect(fs.existsSync(socket)).toBe(false);
      await runRuntimeOk(['delete', '--force', b.id]);
    }));
});

// ---- no leaks ----

/** pid → fds of `pid` that are seccomp notify listeners. */
function notifyFds(pids: number[]): string[] {
  const out: string[] = [];
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:seccomp notify') out.push(`${pid}/${fd}`);
      } catch {
        /* closed */
      }
    }
  }
  return out;
}

describeIf(ok)('vkernel acceptance (CLI): nothing is left', () => {
  it.each(['delete --force of a running container', 'SIGKILL of the init, then delete'])('%s: no FUSE mount, notify fd, supervisor or state', (how) =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: ['/bin/sh', '-c', 'while :; do cat /proc/meminfo > /dev/null; /vktest sysinfo > /dev/null; done'],
        mutate: (s) => void (s.linux!.resources = { ...s.linux!.resources, ...LIMITS }),
      });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const init = JSON.parse((await runRuntimeOk(['state', b.id])).stdout).pid as number;
      await sleep(300);
      const vkfs = supervisorPids(viewDir(b.id));
      const agent = agentPids(agentDir(b.id));
      expect(vkfs).toHaveLength(3); // keeper, worker, standby
      expect(agent).toHaveLength(3); // keeper, worker, standby
      expect(fuseMounts(b.id)).toHaveLength(1);
      expect(notifyFds(agent).length).toBeGreaterThanOrEqual(1);
      expect(pgrep(b.id).sort()).toEqual(expect.arrayContaining([...vkfs, ...agent].sort()));
      if (how.startsWith('SIGKILL')) {
        process.kill(init, 'SIGKILL');
        expect(await until(async () => JSON.parse((await runRuntime(['state', b.id])).stdout || '{}').status === 'stopped', 10_000)).toBe(true);
        await runRuntimeOk(['delete', b.id]);
      } else {
        await runRuntimeOk(['delete', '--force', b.id]);
      }
      expect(await until(() => [...vkfs, ...agent].every((p) => !alive(p)))).toBe(true);
      expect(fuseMounts(b.id)).toEqual([]);
      expect(notifyFds([...vkfs, ...agent])).toEqual([]);
      expect(pgrep(b.id)).toEqual([]);
      expect(fs.existsSync(stateDir(b.id))).toBe(false);
    }),
  );
});

// ---- runc with `vkernel agent` behind linux.seccomp.listenerPath ----
// vkernel-syscalls.test.ts checks sysinfo and nproc there; this adds the real runtimes. runc
// mounts no file view, so only the syscall readers are virtualized.

describeIf(ok && requirement(hasBinary('runc'), 'runc is not installed'))('vkernel acceptance: runc + vkernel agent', () => {
  it('python3, node, glibc and coreutils read 1 CPU and 256 MiB through the syscalls', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkacc-agent-'));
    const socket = path.join(dir, 'agent.sock');
    const agent = spawn(process.execPath, [vkernelCli(), 'agent', '--socket', socket, '--pidfile', path.join(dir, 'pid')], { stdio: 'inherit' });
    try {
      expect(await until(() => fs.existsSync(socket))).toBe(true);
      await withLeakCheck(async () => {
        const b = await hostUsrBundle(['/bin/sh', '-c', PROBE], LIMITS, {}, {
          runtime: 'runc',
          mutate: (s) => {
            s.linux!.seccomp = {
              defaultAction: 'SCMP_ACT_ALLOW',
              listenerPath: socket,
              listenerMetadata: 'rule=min',
              syscalls: [{ names: ['sysinfo', 'sched_getaffinity'], action: 'SCMP_ACT_NOTIFY' }],
            };
          },
        });
        const r = await runBundle(b, { runtime: 'runc' });
        if (r.code !== 0) throw new Error(`runc failed (${r.code}): ${r.stderr}`);
        expect(parseKeyValues(r.stdout)).toMatchObject({
          py_affinity: '1',
          node_parallelism: '1',
          nproc: '1',
          bb_nproc: '1',
          phys: String(256 * MiB),
          // Files are the host's under runc. (busybox free mixes sysinfo's total/free with
          // the host's Cached from /proc/meminfo there: "used" goes negative.)
          meminfo: String(hostMemKiB()),
          online: `0-${HOST_CPUS - 1}`,
        });
      });
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
