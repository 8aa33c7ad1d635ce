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
import {
  agentMetadata,
  agentSocketPath,
  ensureFilterFile,
  FILTER_FLAGS,
  liveFilterRecord,
  saveFilterRecord,
  notifyFilter,
  syscallLayerWanted,
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
      'conf=/run/x/view/vkfs.conf;view=on;rule=cpuset;id=c1',
    );
    expect(agentMetadata({ id: 'a;b"c', policy: DEFAULT_POLICY })).toBe('view=on;rule=min;id=a_b_c');
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

describe('syscallLayerWanted', () => {
  test('on by default (x64), off with the view, mode off, other arches, unimplemented modes', () => {
    const have = fs.existsSync(buildPath('vkagent'));
    expect(syscallLayerWanted(DEFAULT_POLICY, 'x64').want).toBe(have);
    expect(syscallLayerWanted(parseViewPolicy({ 'io.vkernel.mode': 'notify' }), 'x64').want).toBe(have);
    expect(syscallLayerWanted(parseViewPolicy({ 'io.vkernel.view': 'off' }), 'x64')).toEqual({ want: false, reason: 'view off' });
    expect(syscallLayerWanted(parseViewPolicy({ 'io.vkernel.mode': 'off' }), 'x64').want).toBe(false);
    expect(syscallLayerWanted(parseViewPolicy({ 'io.vkernel.mode': 'ptrace' }), 'x64').reason).toMatch(/not implemented/);
    expect(syscallLayerWanted(DEFAULT_POLICY, 'arm64').want).toBe(false);
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
