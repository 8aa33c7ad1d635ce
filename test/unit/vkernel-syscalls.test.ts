// The vkernel syscall layer's TypeScript side: the fixed notify filter, the agent
// metadata, when the layer is used, and the vkernel_filter plan record.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodePlan } from '../../runtime/init/plan';
import type { InitPlan } from '../../runtime/init/plan-types';
import { buildPath } from '../../runtime/paths';
import { DEFAULT_POLICY, parseViewPolicy } from '../../runtime/vkernel/policy';
import { vkernelFeatures } from '../../runtime/features';
import { nullLogger } from '../../runtime/log';
import {
  agentMetadata,
  agentSocketPath,
  checkModes,
  ensureFilterFile,
  FILTER_FLAGS,
  liveFilterRecord,
  mergeTraceFilter,
  preloadMount,
  PRELOAD_DEST,
  RET_TRACE_VK,
  saveFilterRecord,
  notifyFilter,
  selectSyscallMode,
  setupSyscallLayer,
  traceFilter,
  withPreloadEnv,
  type SyscallProbe,
} from '../../runtime/vkernel/syscalls';

describe('notifyFilter', () => {
  test('7 instructions: arch check, sysinfo and sched_getaffinity -> USER_NOTIF, else ALLOW', () => {
    const b = notifyFilter();
    expect(b.length).toBe(7 * 8);
    const ins = Array.from({ length: 7 }, (_, i) => [b.readUInt16LE(i * 8), b[i * 8 + 2], b[i * 8 + 3], b.readUInt32LE(i * 8 + 4)]);
    expect(ins[1]).toEqual([0x15, 0, 3, 0xc000003e]);
    expect(ins[3][3]).toBe(99); // __NR_sysinfo
    expect(ins[4][3]).toBe(204); // __NR_sched_getaffinity
    expect(ins[5]).toEqual([0x06, 0, 0, 0x7fff0000]);
    expect(ins[6]).toEqual([0x06, 0, 0, 0x7fc00000]);
  });

  const vkagent = buildPath('vkagent');
  (fs.existsSync(vkagent) ? test : test.skip)('is byte for byte what `vkagent filter` prints', () => {
    expect(execFileSync(vkagent, ['filter']).equals(notifyFilter())).toBe(true);
  });

  test('ensureFilterFile writes it once and rewrites a stale copy', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vkfilter-'));
    const f = ensureFilterFile(root);
    expect(fs.readFileSync(f).equals(notifyFilter())).toBe(true);
    fs.writeFileSync(f, 'junk');
    expect(fs.readFileSync(ensureFilterFile(root)).equals(notifyFilter())).toBe(true);
    fs.rmSync(root, { recursive: true });
  });

  test('flags: NEW_LISTENER | WAIT_KILLABLE_RECV', () => {
    expect(FILTER_FLAGS).toBe(8 | 32);
  });
});

describe('agent metadata and socket', () => {
  test('flat key=value list; separators and quotes cannot break it', () => {
    expect(agentMetadata({ id: 'c1', policy: { ...DEFAULT_POLICY, cpuRule: 'cpuset' }, viewConf: '/run/x/view/vkfs.conf' })).toBe(
      'conf=/run/x/view/vkfs.conf;view=on;rule=cpuset;syscalls=all;id=c1',
    );
    expect(agentMetadata({ id: 'a;b"c', policy: DEFAULT_POLICY })).toBe('view=on;rule=min;syscalls=all;id=a_b_c');
    expect(agentMetadata({ id: 'c', policy: { ...DEFAULT_POLICY, syscalls: ['sched_getaffinity'] } })).toBe('view=on;rule=min;syscalls=sched_getaffinity;id=c');
  });

  test('a state dir too long for sun_path gets a short socket elsewhere', () => {
    expect(agentSocketPath('/run/vkernel/c1/agent')).toBe('/run/vkernel/c1/agent/vkagent.sock');
    const long = agentSocketPath('/run/vkernel/' + 'x'.repeat(120) + '/agent');
    expect(long).toMatch(/^\/run\/vkernel-agent-[0-9a-f]{20}\.sock$/);
    expect(agentSocketPath('/run/vkernel/' + 'x'.repeat(120) + '/agent')).toBe(long);
  });
});

describe('filter record (exec)', () => {
  test('only offered while an agent runs', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkrec-'));
    saveFilterRecord(dir, { bpf: '/nonexistent.bpf', flags: 40, agent: '/nonexistent.sock', metadata: 'rule=min' });
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'filter.json'), 'utf8')).flags).toBe(40);
    expect(liveFilterRecord(dir)).toBeUndefined(); // no pidfile, no agent
    expect(liveFilterRecord(path.join(dir, 'missing'))).toBeUndefined();
    fs.rmSync(dir, { recursive: true });
  });
});

// A classic-BPF interpreter for what seccomp programs use here (ld abs, jeq/jgt/jge/jset k,
// ja, and k, ret k), to check verdicts rather than bytes.
function runBpf(prog: Buffer, nr: number, arch = 0xc000003e): number {
  const data = [nr, arch];
  let a = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog[pc * 8 + 2];
    const jf = prog[pc * 8 + 3];
    const k = prog.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) a = data[k / 4] >>> 0;
    else if (code === 0x54) a = (a & k) >>> 0;
    else if (code === 0x05) pc += k;
    else if (code === 0x15) pc += a === k ? jt : jf;
    else if (code === 0x25) pc += a > k ? jt : jf;
    else if (code === 0x35) pc += a >= k ? jt : jf;
    else if (code === 0x45) pc += a & k ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`opcode ${code.toString(16)} at ${pc}`);
  }
  throw new Error('fell off the program');
}

function prog(ins: Array<[number, number, number, number]>): Buffer {
  const b = Buffer.alloc(ins.length * 8);
  ins.forEach(([code, jt, jf, k], i) => {
    b.writeUInt16LE(code, i * 8);
    b[i * 8 + 2] = jt;
    b[i * 8 + 3] = jf;
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return b;
}

const ALLOW = 0x7fff0000;
const ERRNO_EPERM = 0x00050001;
const NOTIFY = 0x7fc00000;
const KILL = 0x80000000;
const I386 = 0x40000003;

describe('trace filter (ptrace mode)', () => {
  test('7 instructions, the notify filter with RET_TRACE | 0x766b instead of USER_NOTIF', () => {
    const b = traceFilter();
    expect(b.length).toBe(7 * 8);
    expect(b.subarray(0, 48).equals(notifyFilter().subarray(0, 48))).toBe(true);
    expect([b.readUInt16LE(48), b.readUInt32LE(52)]).toEqual([0x06, 0x7ff0766b]);
    expect(RET_TRACE_VK).toBe(0x7ff0766b);
    expect(runBpf(b, 99)).toBe(RET_TRACE_VK);
    expect(runBpf(b, 204)).toBe(RET_TRACE_VK);
    expect(runBpf(b, 39)).toBe(ALLOW);
    expect(runBpf(b, 99, I386)).toBe(ALLOW);
    expect(runBpf(b, 99 | 0x40000000)).toBe(ALLOW); // x32
  });

  const vkagent = buildPath('vkagent');
  (fs.existsSync(vkagent) ? test : test.skip)('is byte for byte what `vkagent trace-filter` prints', () => {
    expect(execFileSync(vkagent, ['trace-filter']).equals(traceFilter())).toBe(true);
  });

  test('ensureFilterFile(root, "trace") writes it next to the notify filter', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vkfilter-'));
    expect(fs.readFileSync(ensureFilterFile(root, 'trace')).equals(traceFilter())).toBe(true);
    expect(ensureFilterFile(root, 'trace')).not.toBe(ensureFilterFile(root));
    fs.rmSync(root, { recursive: true });
  });

  test('merged into a profile: allowed cold calls are traced, every other verdict is the profile\'s', () => {
    const user = prog([
      [0x20, 0, 0, 4],
      [0x15, 0, 6, 0xc000003e], // other arch -> kill
      [0x20, 0, 0, 0],
      [0x15, 0, 1, 165], // mount -> EPERM
      [0x06, 0, 0, ERRNO_EPERM],
      [0x15, 0, 1, 163], // acct -> notify
      [0x06, 0, 0, NOTIFY],
      [0x06, 0, 0, ALLOW],
      [0x06, 0, 0, KILL],
    ]);
    const m = mergeTraceFilter(user)!;
    expect(m.length).toBe(user.length + traceFilter().length);
    expect(m.subarray(user.length).equals(traceFilter())).toBe(true);
    // the one `ret ALLOW` (index 7) became `ja +1` to the tail at index 9
    expect([m.readUInt16LE(7 * 8), m.readUInt32LE(7 * 8 + 4)]).toEqual([0x05, 1]);
    for (const [nr, want] of [
      [99, RET_TRACE_VK],
      [204, RET_TRACE_VK],
      [39, ALLOW],
      [165, ERRNO_EPERM],
      [163, NOTIFY],
    ]) {
      expect(runBpf(m, nr)).toBe(want);
      if (want !== RET_TRACE_VK) expect(runBpf(m, nr)).toBe(runBpf(user, nr));
    }
    expect(runBpf(m, 99, I386)).toBe(KILL);
  });

  test('a profile that denies sysinfo keeps denying it; bad or too long programs are refused', () => {
    const deny = prog([
      [0x20, 0, 0, 0],
      [0x15, 0, 1, 99],
      [0x06, 0, 0, ERRNO_EPERM],
      [0x06, 0, 0, ALLOW],
    ]);
    const m = mergeTraceFilter(deny)!;
    expect(runBpf(m, 99)).toBe(ERRNO_EPERM);
    expect(runBpf(m, 204)).toBe(RET_TRACE_VK);
    expect(mergeTraceFilter(Buffer.alloc(0))).toBeUndefined();
    expect(mergeTraceFilter(Buffer.alloc(12))).toBeUndefined();
    expect(mergeTraceFilter(Buffer.alloc(4090 * 8))).toBeUndefined();
  });
});

const HOST: SyscallProbe = { arch: 'x64', seccompActions: ['kill_process', 'errno', 'user_notif', 'trace', 'allow'], agent: true, preloadLib: true };
const auto = DEFAULT_POLICY;
const forced = (mode: string) => parseViewPolicy({ 'io.vkernel.mode': mode });

describe('mode selection (injected probe)', () => {
  test('auto: notify when the host has everything', () => {
    expect(selectSyscallMode(auto, checkModes(HOST))).toEqual({ modes: ['notify', 'ptrace', 'preload'], degraded: false, reason: undefined });
  });

  test('auto: a container listener (EBUSY) or a kernel without notify -> ptrace, with the reason', () => {
    const busy = selectSyscallMode(auto, checkModes(HOST, { listener: true }));
    expect(busy.modes[0]).toBe('ptrace');
    expect(busy.degraded).toBe(true);
    expect(busy.reason).toMatch(/^notify: .*own listener.*EBUSY/);
    const old = selectSyscallMode(auto, checkModes({ ...HOST, seccompActions: ['errno', 'trace', 'allow'] }));
    expect(old.modes).toEqual(['ptrace', 'preload']);
    expect(old.reason).toMatch(/no seccomp user notification/);
  });

  test('auto: no ptrace either -> preload; nothing -> off', () => {
    const p = selectSyscallMode(auto, checkModes({ ...HOST, ptraceBlocked: 'no CAP_SYS_PTRACE' }, { listener: true }));
    expect(p.modes).toEqual(['preload']);
    expect(p.reason).toMatch(/notify: .*; ptrace: no CAP_SYS_PTRACE/);
    const arm = selectSyscallMode(auto, checkModes({ ...HOST, arch: 'arm64' }));
    expect(arm.modes).toEqual(['preload']); // the library is not arch-bound
    const none = selectSyscallMode(auto, checkModes({ ...HOST, arch: 'arm64', preloadLib: false }));
    expect(none.modes).toEqual([]);
    expect(none.degraded).toBe(true);
    expect(none.reason).toMatch(/notify: .*; ptrace: .*; preload: .*libvkpreload\.so is missing/);
    expect(selectSyscallMode(auto, checkModes(HOST, { traceable: false, listener: true })).modes).toEqual(['preload']);
  });

  test('io.vkernel.syscalls=none: no mechanism at all, not degraded; a subset keeps the mechanism', () => {
    const none = parseViewPolicy({ 'io.vkernel.syscalls': 'none' });
    expect(selectSyscallMode(none, checkModes(HOST))).toEqual({ modes: [], reason: 'io.vkernel.syscalls=none', degraded: false });
    const one = parseViewPolicy({ 'io.vkernel.syscalls': 'sysinfo' });
    expect(selectSyscallMode(one, checkModes(HOST)).modes[0]).toBe('notify');
  });

  test('forced modes are taken alone, or off with the reason; view off and mode off are not degraded', () => {
    expect(selectSyscallMode(forced('ptrace'), checkModes(HOST)).modes).toEqual(['ptrace']);
    expect(selectSyscallMode(forced('preload'), checkModes(HOST)).modes).toEqual(['preload']);
    const n = selectSyscallMode(forced('notify'), checkModes(HOST, { listener: true }));
    expect(n).toMatchObject({ modes: [], degraded: true });
    expect(n.reason).toMatch(/io.vkernel.mode=notify unavailable/);
    expect(selectSyscallMode(forced('off'), checkModes(HOST))).toEqual({ modes: [], reason: 'io.vkernel.mode=off', degraded: false });
    expect(selectSyscallMode(parseViewPolicy({ 'io.vkernel.view': 'off' }), checkModes(HOST))).toEqual({ modes: [], reason: 'view off', degraded: false });
  });

  test('vkernel features: usable modes, the auto pick, each mode\'s state, the view mode', () => {
    const f = vkernelFeatures({ ...HOST, seccompActions: ['trace', 'allow'] }, false);
    expect(f['org.opencontainers.vkernel.syscalls.modes']).toBe('ptrace,preload');
    expect(f['org.opencontainers.vkernel.syscalls.auto']).toBe('ptrace');
    expect(f['org.opencontainers.vkernel.syscalls.notify']).toMatch(/^unavailable: /);
    expect(f['org.opencontainers.vkernel.syscalls.ptrace']).toBe('available');
    expect(f['org.opencontainers.vkernel.view.mode']).toBe('snapshot');
    for (const v of Object.values(vkernelFeatures())) expect(typeof v).toBe('string');
  });
});

describe('preload mode', () => {
  test('LD_PRELOAD: added, or put first in an existing list, never twice', () => {
    expect(withPreloadEnv(['PATH=/bin'])).toEqual(['PATH=/bin', `LD_PRELOAD=${PRELOAD_DEST}`]);
    expect(withPreloadEnv(['LD_PRELOAD=/x.so /y.so', 'A=1'])).toEqual([`LD_PRELOAD=${PRELOAD_DEST}:/x.so /y.so`, 'A=1']);
    expect(withPreloadEnv([`LD_PRELOAD=${PRELOAD_DEST}:/x.so`])).toEqual([`LD_PRELOAD=${PRELOAD_DEST}:/x.so`]);
    expect(withPreloadEnv(['LD_PRELOAD='])).toEqual([`LD_PRELOAD=${PRELOAD_DEST}`]);
  });

  test('a read-only, nosuid, nodev file bind at /.vkernel/libvkpreload.so', () => {
    const m = preloadMount('/lib/x.so');
    expect(m).toMatchObject({ source: '/lib/x.so', destination: '/.vkernel/libvkpreload.so', fstype: 'bind', kind: 'file' });
    expect(m.flags & 1).toBe(1); // MS_RDONLY
    expect(m.flags & 4096).toBe(4096); // MS_BIND
  });

  test('setupSyscallLayer: auto falls to preload when notify and ptrace are unusable, and warns', async () => {
    const plan = { mounts: [], env: ['PATH=/bin'] } as unknown as InitPlan;
    const warnings: string[] = [];
    const log = { warn: (m: string) => warnings.push(m), debug: () => undefined };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vklayer-'));
    const layer = await setupSyscallLayer(plan, {
      id: 'c1',
      root: dir,
      dir: path.join(dir, 'agent'),
      policy: auto,
      viewConf: '/x/vkfs.conf',
      log,
      probe: { ...HOST, seccompActions: ['allow'] },
    });
    expect(layer).toEqual({ mode: 'preload' });
    expect(plan.env).toContain(`LD_PRELOAD=${PRELOAD_DEST}`);
    expect(plan.mounts.map((m) => m.destination)).toEqual([PRELOAD_DEST]);
    expect(warnings).toEqual([expect.stringMatching(/^vkernel syscalls: preload \(notify: .*; ptrace: .*\): dynamic glibc binaries only$/)]);
    // ptrace: no process is started before attach; the filter comes back for vkinit
    const p2 = { mounts: [], env: [] } as unknown as InitPlan;
    const tr = await setupSyscallLayer(p2, { id: 'c1', root: dir, dir: path.join(dir, 'agent'), policy: forced('ptrace'), viewConf: '/x', log: nullLogger, probe: HOST });
    expect(tr.mode).toBe('ptrace');
    expect(fs.readFileSync(tr.seccompBpf!).equals(traceFilter())).toBe(true);
    expect(typeof tr.attach).toBe('function');
    expect(p2.vkernelFilter).toBeUndefined();
    fs.rmSync(dir, { recursive: true });
  });
});

describe('vkernel_filter plan record', () => {
  const base: InitPlan = {
    mode: 'create',
    cloneFlags: 0,
    joins: [],
    cgroupProcs: [],
    wait: false,
    syncHooks: false,
    preserveFds: 0,
    rootPropagation: 0,
    mounts: [],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    sysctl: [],
    terminal: false,
    cwd: '/',
    args: ['sh'],
    env: [],
    rlimits: [],
    uid: 0,
    gid: 0,
    additionalGids: [],
    noNewPrivileges: false,
    createContainerHooks: [],
    startContainerHooks: [],
  } as unknown as InitPlan;

  test('is the last record: bpf path, flags, agent socket, metadata', () => {
    const text = encodePlan({ ...base, vkernelFilter: { bpf: '/r/f.bpf', flags: 40, agent: '/r/a.sock', metadata: 'rule=min' } }).toString('latin1');
    expect(text).toContain('vkernel_filter');
    expect(text.indexOf('vkernel_filter')).toBeGreaterThan(text.indexOf('cwd'));
    for (const s of ['/r/f.bpf', '40', '/r/a.sock', 'rule=min']) expect(text).toContain(s);
    expect(encodePlan(base).toString('latin1')).not.toContain('vkernel_filter');
  });
});
