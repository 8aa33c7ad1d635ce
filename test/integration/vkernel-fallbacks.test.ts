// The syscall layer's three mechanisms on the real kernel (docs/vkernel-syscalls.md), each
// forced by io.vkernel.mode, on a container with cpu quota 50000/100000 and 256 MiB:
// notify (vkagent), ptrace (SECCOMP_RET_TRACE + `vkagent trace`), preload (libvkpreload.so
// in LD_PRELOAD, for a dynamic glibc program in a rootfs with the host's /usr); auto under
// the container's own seccomp listener (picks ptrace); the tracer killed under a running
// workload. Every test runs inside withLeakCheck.
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildPath } from '../../runtime/paths';
import type { LinuxResources, Spec } from '../../runtime/spec/types';
import { agentPids, tracerPids } from '../../runtime/vkernel/syscalls';
import {
  describeIf,
  hasBinary,
  hasCgroupV1,
  makeBundle,
  parseKeyValues,
  repoRoot,
  requireFixtures,
  requireRoot,
  requireRuntime,
  requirement,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeRoot,
  withLeakCheck,
  type Bundle,
} from '../harness';
import { agentDir, alive, LIMITS, MiB, sleep, until } from './helpers/vkernel-syscalls';

const VKAGENT = buildPath('vkagent');
const PRELOAD = buildPath('libvkpreload.so');
const actions = (() => {
  try {
    return fs.readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8');
  } catch {
    return '';
  }
})();
const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime('vkernel') &&
  requirement(fs.existsSync(VKAGENT) && fs.existsSync(PRELOAD), `${VKAGENT} or ${PRELOAD} is missing (make native)`) &&
  requirement(process.arch === 'x64', 'the notify and trace filters are x86_64 only') &&
  requirement(/\buser_notif\b/.test(actions) && /\btrace\b/.test(actions), 'seccomp user_notif and trace actions') &&
  requirement(hasBinary('gcc'), 'gcc (builds the dynamic test program and the seccomp agent)') &&
  requirement(['/usr/bin/python3', '/usr/bin/nproc'].every((f) => fs.existsSync(f)), 'python3 and nproc in the host /usr') &&
  requirement(hasCgroupV1('memory') || fs.existsSync('/sys/fs/cgroup/cgroup.controllers'), 'a memory cgroup');




function limited(mode: string, extra?: (s: Spec) => void) {
  return (s: Spec) => {
    s.linux!.resources = { ...s.linux!.resources, ...LIMITS };
    s.annotations = { ...(s.annotations ?? {}), 'io.vkernel.mode': mode };
    extra?.(s);
  };
}

async function runOk(b: Bundle): Promise<{ stdout: string; stderr: string }> {
  const r = await runBundle(b);
  if (r.code !== 0) throw new Error(`container failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return r;
}

/** A dynamic glibc program: sysinfo, sched_getaffinity, get_nprocs(_conf) through libc. */
const DYN_C = `#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/sysinfo.h>
int main(void)
{
	struct sysinfo si;
	cpu_set_t set;
	if (sysinfo(&si) < 0 || sched_getaffinity(0, sizeof set, &set) < 0)
		return 1;
	printf("totalram=%llu\\naffinity=%d\\nnprocs=%d\\nnprocs_conf=%d\\n",
	       (unsigned long long)si.totalram * (si.mem_unit ? si.mem_unit : 1), CPU_COUNT(&set), get_nprocs(), get_nprocs_conf());
	return 0;
}
`;

/**
 * A wait on the traced loop: a shell spawning a traced /vktest every 50 ms under the
 * 0.5-CPU quota, with a re-seize in between, can be seconds per step on a loaded host.
 */
const TRACED = 20_000;

let tmp: string;
let dynBin: string;
let agentBin: string;

describeIf(ok)('vkernel syscall mechanisms: notify, ptrace, preload', () => {
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-fallbacks-'));
    fs.writeFileSync(path.join(tmp, 'dyn.c'), DYN_C);
    dynBin = path.join(tmp, 'vkdyn');
    execFileSync('gcc', ['-O2', '-o', dynBin, path.join(tmp, 'dyn.c')]);
    agentBin = path.join(tmp, 'seccomp-agent');
    execFileSync('gcc', ['-O2', '-D_GNU_SOURCE', '-o', agentBin, path.join(repoRoot(), 'test/integration/seccomp-agent.c')]);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('vkernel features reports the usable mechanisms, the auto pick and the view mode', async () => {
    const a = JSON.parse((await runRuntimeOk(['features'])).stdout).annotations as Record<string, string>;
    expect(a['org.opencontainers.vkernel.syscalls.modes']).toBe('notify,ptrace,preload');
    expect(a['org.opencontainers.vkernel.syscalls.auto']).toBe('notify');
    expect(a['org.opencontainers.vkernel.syscalls.ptrace']).toBe('available');
    expect(a['org.opencontainers.vkernel.view.mode']).toBe(fs.existsSync('/dev/fuse') ? 'fuse' : 'snapshot');
  });

  it.each(['notify', 'ptrace'])('%s: the static payload sees 256 MiB, 1 CPU and the container task count', (mode) =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/bin/sh', '-c', '/vktest sysinfo; echo vknproc=$(/vktest nproc); echo bbnproc=$(nproc)'], mutate: limited(mode) });
      const r = await runOk(b);
      const kv = parseKeyValues(r.stdout);
      expect(kv.totalram).toBe(String(256 * MiB));
      expect(Number(kv.freeram)).toBeLessThanOrEqual(256 * MiB);
      expect(kv.procs).toBe('2'); // sh and vktest
      expect(Number(kv.uptime)).toBeLessThan(10);
      expect(kv.vknproc).toBe('1');
      expect(kv.bbnproc).toBe('1');
      expect(r.stderr).not.toMatch(/vkernel syscalls/); // forced and available: nothing to warn about
    }));

  it('ptrace: one tracer (keeper + worker) while the container runs, none after delete', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({ args: ['/vktest', 'sleep', '30'], mutate: limited('ptrace') });
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      const pids = tracerPids(agentDir(b.id));
      expect(pids).toHaveLength(2);
      expect(agentPids(agentDir(b.id))).toEqual([]); // no notify agent
      const init = Number(JSON.parse((await runRuntimeOk(['state', b.id])).stdout).pid);
      expect(fs.readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(new RegExp(`\\nTracerPid:\\s+${pids[1]}\\n`));
      // exec'd processes are not traced and get no filter of ours: host values
      const ex = parseKeyValues((await runRuntimeOk(['exec', b.id, '/vktest', 'sysinfo'])).stdout);
      expect(Number(ex.totalram)).toBe(os.totalmem());
      await runRuntimeOk(['delete', '--force', b.id]);
      expect(await until(() => pids.every((p) => !alive(p)))).toBe(true);
      expect(fs.existsSync(agentDir(b.id))).toBe(false);
    }));

  it('preload: a dynamic glibc program, nproc and python3 see 256 MiB and 1 CPU; the static payload does not', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: [
          '/bin/sh',
          '-c',
          '/vkdyn; echo nproc=$(/usr/bin/nproc); /usr/bin/python3 -c \'import os; print("py_affinity=%d" % len(os.sched_getaffinity(0))); print("py_own=%d" % len(os.sched_getaffinity(os.getpid())))\'; ' +
            'echo env=$LD_PRELOAD; /vktest sysinfo | sed s/^/static_/',
        ],
        mutate: limited('preload', (s) => {
          s.mounts!.push({ destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
          s.process!.env = [...(s.process!.env ?? []), 'HOME=/tmp', 'LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libm.so.6'];
        }),
      });
      for (const l of ['lib', 'lib64']) {
        const p = path.join(b.rootfs, l);
        if (!fs.existsSync(p)) fs.symlinkSync(`usr/${l}`, p);
      }
      fs.copyFileSync(dynBin, path.join(b.rootfs, 'vkdyn'));
      fs.chmodSync(path.join(b.rootfs, 'vkdyn'), 0o755);
      const r = await runOk(b);
      const kv = parseKeyValues(r.stdout);
      expect(kv.totalram).toBe(String(256 * MiB));
      expect(kv.affinity).toBe('1');
      expect(kv.nprocs).toBe('1');
      expect(kv.nprocs_conf).toBe('1');
      expect(kv.nproc).toBe('1');
      expect(kv.py_affinity).toBe('1');
      expect(kv.py_own).toBe('1'); // its own pid, as the notify agent answers
      // ours first, the container's own LD_PRELOAD kept after it
      expect(kv.env).toBe('/.vkernel/libvkpreload.so:/usr/lib/x86_64-linux-gnu/libm.so.6');
      // documented limit: a static binary bypasses LD_PRELOAD
      expect(Number(kv.static_totalram)).toBe(os.totalmem());
      expect(r.stderr).not.toMatch(/cannot be preloaded/);
      expect(agentPids(agentDir(b.id))).toEqual([]);
    }));

  it('preload with io.vkernel.syscalls=sched_getaffinity: sysinfo stays the host\'s, the affinity is the container\'s', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: ['/vkdyn'],
        mutate: limited('preload', (s) => {
          s.mounts!.push({ destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
          s.annotations = { ...(s.annotations ?? {}), 'io.vkernel.syscalls': 'sched_getaffinity' };
        }),
      });
      for (const l of ['lib', 'lib64']) {
        const p = path.join(b.rootfs, l);
        if (!fs.existsSync(p)) fs.symlinkSync(`usr/${l}`, p);
      }
      fs.copyFileSync(dynBin, path.join(b.rootfs, 'vkdyn'));
      fs.chmodSync(path.join(b.rootfs, 'vkdyn'), 0o755);
      const kv = parseKeyValues((await runOk(b)).stdout);
      expect(Number(kv.totalram)).toBe(os.totalmem());
      expect(kv.affinity).toBe('1');
    }));

  it("auto under the container's own seccomp listener picks ptrace: its agent keeps its calls, sysinfo is still virtualized", () =>
    withLeakCheck(async () => {
      const sock = path.join(tmp, 'own.sock');
      const log = path.join(tmp, 'own.log');
      const agent: ChildProcess = spawn(agentBin, [sock, log, '60'], { stdio: ['ignore', 'ignore', 'inherit'] });
      try {
        expect(await until(() => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('ready'))).toBe(true);
        const b = await makeBundle({
          args: ['/bin/sh', '-c', '/vktest sysinfo; echo vknproc=$(/vktest nproc); rmdir /tmp 2>/dev/null; echo rmdir=$?'],
          mutate: limited('auto', (s) => {
            s.linux!.seccomp = {
              defaultAction: 'SCMP_ACT_ALLOW',
              listenerPath: sock,
              syscalls: [{ names: ['rmdir'], action: 'SCMP_ACT_NOTIFY' }],
            };
          }),
        });
        const r = await runOk(b);
        const kv = parseKeyValues(r.stdout);
        expect(kv.totalram).toBe(String(256 * MiB));
        expect(kv.vknproc).toBe('1');
        expect(kv.rmdir).toBe('1'); // the container's agent answered EXDEV
        expect(fs.readFileSync(log, 'utf8')).toMatch(/^notify 84 /m);
        expect(r.stderr).toMatch(/vkernel syscalls: ptrace \(notify: the container's seccomp profile has its own listener/);
      } finally {
        agent.kill('SIGTERM');
      }
    }));

  it('ptrace: killing the tracer never stops the workload; the keeper re-seizes it and the view comes back; without the keeper calls fail (ENOSYS)', () =>
    withLeakCheck(async () => {
      const b = await makeBundle({
        args: ['/bin/sh', '-c', 'i=0; while :; do i=$((i+1)); /vktest sysinfo > /tmp/s.new 2>&1; echo rc=$? i=$i >> /tmp/s.new; mv /tmp/s.new /tmp/s; sleep 0.05; done'],
        mutate: limited('ptrace'),
      });
      const file = path.join(b.rootfs, 'tmp', 's');
      const read = () => {
        try {
          return fs.readFileSync(file, 'utf8');
        } catch {
          return '';
        }
      };
      const iter = () => Number(/ i=(\d+)/.exec(read())?.[1] ?? 0);
      await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
      try {
        const dir = agentDir(b.id);
        expect(await until(() => read().includes(`totalram=${256 * MiB}`), TRACED)).toBe(true);
        const [keeper, worker] = tracerPids(dir);
        process.kill(worker, 'SIGKILL');
        expect(await until(() => tracerPids(dir).length === 2 && tracerPids(dir)[1] !== worker, TRACED)).toBe(true);
        const after = iter();
        expect(await until(() => iter() > after + 3 && read().includes(`totalram=${256 * MiB}`) && read().includes('rc=0'), TRACED)).toBe(true);
        // keeper and worker gone: the tracees are detached; the traced calls fail, the loop runs on
        const both = tracerPids(dir);
        expect(both[0]).toBe(keeper);
        for (const p of both) process.kill(p, 'SIGKILL');
        expect(await until(() => both.every((p) => !alive(p)), TRACED)).toBe(true);
        const gone = iter();
        expect(await until(() => iter() > gone + 3 && /Function not implemented/.test(read()), TRACED)).toBe(true);
        expect(JSON.parse((await runRuntimeOk(['state', b.id])).stdout).status).toBe('running');
      } finally {
        await runRuntime(['delete', '--force', b.id]);
      }
    }), 5 * TRACED + 30_000); // the five waits, run, delete and the leak check
});
