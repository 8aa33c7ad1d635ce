// cgroup v2 device programs: instruction generation (runtime/cgroups/v2/devicefilter.ts),
// run by the interpreter in runtime/cgroups/testing.ts; the loader's attach-then-detach
// replacement against FakeBpf; and the v2 driver using it on the file-tree fake.

import { InvalidArgumentError, NotImplementedError } from '../../runtime/errors';
import { createCgroupManager } from '../../runtime/cgroups/manager';
import {
  DEFAULT_DEVICE_RULES,
  DeviceEmulator,
  deviceRulesFromOci,
  effectiveDeviceRules,
  WILDCARD,
  type DeviceRule,
  type DeviceType,
} from '../../runtime/cgroups/device-rules';
import { FakeBpf, FakeCgroupTree, runDeviceProgram, type DeviceAccess } from '../../runtime/cgroups/testing';
import { compileDeviceFilter, decodeInsns, encodeInsns, OP, type BpfInsn } from '../../runtime/cgroups/v2/devicefilter';
import { BpfDeviceLoader } from '../../runtime/cgroups/v2/devices';

const trees: FakeCgroupTree[] = [];
afterAll(() => trees.forEach((t) => t.cleanup()));

const rule = (type: DeviceType, major: number, minor: number, access: string, allow: boolean): DeviceRule => ({ type, major, minor, access, allow });
const req = (type: 'b' | 'c', major: number, minor: number, access: string): DeviceAccess => ({ type, major, minor, access });
const allowed = (rules: DeviceRule[], r: DeviceAccess): boolean => runDeviceProgram(compileDeviceFilter(rules).insns, r) === 1;

/** What a v1 devices cgroup in the emulator's state decides (the kernel's match_exception). */
function emulatorAllows(rules: DeviceRule[], r: DeviceAccess): boolean {
  const emu = DeviceEmulator.fromRules(rules);
  const covered = emu.exceptions().some(
    (e) =>
      e.type === r.type &&
      (e.major === WILDCARD || e.major === r.major) &&
      (e.minor === WILDCARD || e.minor === r.minor) &&
      [...r.access].every((c) => e.access.includes(c)),
  );
  return emu.defaultAllow ? !covered : covered;
}

const fmt = (i: BpfInsn) => `${i.code.toString(16)} r${i.dst} r${i.src} ${i.off} ${i.imm}`;

describe('devicefilter: instructions', () => {
  test('the prologue loads type, access, major, minor; one block per exception; default deny last', () => {
    const p = compileDeviceFilter([rule('a', -1, -1, 'rwm', false), rule('c', 1, 3, 'rwm', true)]);
    expect(p.insns.map(fmt)).toEqual([
      '61 r2 r1 0 0', // r2 = *(u32 *)(r1 + 0)
      '54 r2 r0 0 65535', // w2 &= 0xffff            (device type)
      '61 r3 r1 0 0',
      '74 r3 r0 0 16', // w3 >>= 16                (access)
      '61 r4 r1 4 0', // major
      '61 r5 r1 8 0', // minor
      '55 r2 r0 4 2', // if r2 != CHAR goto +4 (the default)
      '55 r4 r0 3 1', // if r4 != 1 goto +3
      '55 r5 r0 2 3', // if r5 != 3 goto +2
      'b4 r0 r0 0 1', // w0 = 1
      '95 r0 r0 0 0', // exit
      'b4 r0 r0 0 0', // w0 = 0 (default deny)
      '95 r0 r0 0 0',
    ]);
    expect(p.license).toBe('Apache');
    expect(p.defaultAllow).toBe(false);
  });

  test('partial access checks (r3 & access) == r3; wildcards skip their compare (runc block layout)', () => {
    const p = compileDeviceFilter([rule('b', -1, -1, 'm', true)]);
    expect(p.insns.slice(6, 12).map(fmt)).toEqual([
      '55 r2 r0 5 1', // if type != BLOCK goto next (+5)
      'bc r1 r3 0 0', // w1 = w3
      '54 r1 r0 0 1', // w1 &= MKNOD
      '5d r1 r3 2 0', // if r1 != r3 goto next (+2)
      'b4 r0 r0 0 1',
      '95 r0 r0 0 0',
    ]);
  });

  test('the default rules: exceptions in runc order (major, minor, type), each jump lands on the next block', () => {
    const p = compileDeviceFilter(effectiveDeviceRules([]));
    expect(p.exceptions.map((e) => `${e.type} ${e.major}:${e.minor} ${e.access}`)).toEqual([
      'b -1:-1 m',
      'c -1:-1 m',
      'c 1:3 rwm',
      'c 1:5 rwm',
      'c 1:7 rwm',
      'c 1:8 rwm',
      'c 1:9 rwm',
      'c 5:0 rwm',
      'c 5:2 rwm',
      'c 10:200 rwm',
      'c 136:-1 rwm',
    ]);
    // Every jump target is the first instruction of a block (a JNE on r2) or the final default.
    const starts = new Set<number>();
    p.insns.forEach((i, n) => i.code === OP.JNE_IMM && i.dst === 2 && starts.add(n));
    starts.add(p.insns.length - 2);
    p.insns.forEach((i, n) => {
      if (i.code === OP.JNE_IMM || i.code === OP.JNE_REG || i.code === OP.JNE32_IMM) expect(starts.has(n + 1 + i.off)).toBe(true);
    });
    expect(p.insns[p.insns.length - 1].code).toBe(OP.EXIT);
  });

  test('majors/minors above INT32_MAX use a 32-bit compare (a sign-extended imm would never match)', () => {
    const p = compileDeviceFilter([rule('c', 0x80000001, 0, 'r', true)]);
    const cmp = p.insns.find((i) => i.dst === 4 && i.code !== OP.LDXW);
    expect(cmp?.code).toBe(OP.JNE32_IMM);
    expect(allowed([rule('c', 0x80000001, 0, 'r', true)], req('c', 0x80000001, 0, 'r'))).toBe(true);
    expect(allowed([rule('c', 0x80000001, 0, 'r', true)], req('c', 1, 0, 'r'))).toBe(false);
  });

  test('encoding: 8 bytes per instruction, dst in the low nibble, little-endian off/imm; decode inverts it', () => {
    const insns: BpfInsn[] = [{ code: OP.JNE_REG, dst: 1, src: 3, off: -2, imm: -5 }];
    const buf = encodeInsns(insns);
    expect([...buf]).toEqual([0x5d, 0x31, 0xfe, 0xff, 0xfb, 0xff, 0xff, 0xff]);
    const p = compileDeviceFilter(effectiveDeviceRules([]));
    expect(decodeInsns(encodeInsns(p.insns))).toEqual(p.insns);
  });
});

describe('devicefilter: what the program decides', () => {
  test('default deny plus the default allow list', () => {
    const rules = effectiveDeviceRules([]);
    expect(allowed(rules, req('c', 1, 3, 'rw'))).toBe(true); // /dev/null
    expect(allowed(rules, req('c', 1, 5, 'r'))).toBe(true); // /dev/zero
    expect(allowed(rules, req('c', 136, 7, 'rw'))).toBe(true); // /dev/pts/7
    expect(allowed(rules, req('c', 1, 11, 'w'))).toBe(false); // /dev/kmsg
    expect(allowed(rules, req('b', 8, 0, 'r'))).toBe(false); // /dev/sda
    expect(allowed(rules, req('b', 8, 0, 'm'))).toBe(true); // mknod of any block device
    expect(allowed(rules, req('b', 8, 0, 'rm'))).toBe(false);
  });

  test('later rules win: allow-all then deny one device; deny-all then allow one', () => {
    const denyOne = [rule('a', -1, -1, 'rwm', true), rule('c', 1, 5, 'rwm', false)];
    expect(allowed(denyOne, req('c', 1, 5, 'r'))).toBe(false);
    expect(allowed(denyOne, req('c', 1, 3, 'r'))).toBe(true);
    expect(allowed(denyOne, req('b', 8, 0, 'rw'))).toBe(true);
    const allowNull = [rule('a', -1, -1, 'rwm', false), rule('c', 1, 3, 'rw', true)];
    expect(allowed(allowNull, req('c', 1, 3, 'rw'))).toBe(true);
    expect(allowed(allowNull, req('c', 1, 3, 'm'))).toBe(false);
    expect(allowed(allowNull, req('c', 1, 5, 'r'))).toBe(false);
    // A later deny of the write access leaves read.
    const readOnly = [...allowNull, rule('c', 1, 3, 'w', false)];
    expect(allowed(readOnly, req('c', 1, 3, 'r'))).toBe(true);
    expect(allowed(readOnly, req('c', 1, 3, 'w'))).toBe(false);
    // An "a" rule resets everything before it.
    const reset = [rule('c', 1, 5, 'rwm', false), rule('a', -1, -1, 'rwm', true)];
    expect(allowed(reset, req('c', 1, 5, 'r'))).toBe(true);
    // No rules at all: deny-all (the emulator's start).
    expect(allowed([], req('c', 1, 3, 'r'))).toBe(false);
  });

  test('wildcard majors and minors', () => {
    const rules = [rule('a', -1, -1, 'rwm', false), rule('c', 4, -1, 'r', true), rule('b', -1, 0, 'w', true)];
    expect(allowed(rules, req('c', 4, 1, 'r'))).toBe(true);
    expect(allowed(rules, req('c', 4, 99, 'r'))).toBe(true);
    expect(allowed(rules, req('c', 5, 1, 'r'))).toBe(false);
    expect(allowed(rules, req('b', 8, 0, 'w'))).toBe(true);
    expect(allowed(rules, req('b', 8, 1, 'w'))).toBe(false);
    expect(allowed(rules, req('c', 8, 0, 'w'))).toBe(false);
  });

  test('agrees with the v1 controller model on random rule lists', () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)];
    const nums = [WILDCARD, 1, 3, 5];
    const accesses = ['r', 'w', 'm', 'rw', 'rwm', 'wm'];
    let checked = 0;
    for (let n = 0; n < 400; n++) {
      const rules: DeviceRule[] = [];
      const count = 1 + rnd(5);
      for (let k = 0; k < count; k++) {
        rules.push(rule(pick(['a', 'b', 'c', 'c'] as const), pick(nums), pick(nums), pick(accesses), rnd(2) === 0));
      }
      try {
        DeviceEmulator.fromRules(rules);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidArgumentError); // a hole in a wildcard: refused by both
        expect(() => compileDeviceFilter(rules)).toThrow(InvalidArgumentError);
        continue;
      }
      for (const type of ['b', 'c'] as const) {
        for (const major of [1, 3, 5, 7]) {
          for (const minor of [1, 3, 5]) {
            for (const access of ['r', 'w', 'm', 'rw', 'rwm']) {
              const r = req(type, major, minor, access);
              expect({ rules, r, allowed: allowed(rules, r) }).toEqual({ rules, r, allowed: emulatorAllows(rules, r) });
              checked++;
            }
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(10000);
  });

  test('punching a hole into a wildcard exception is refused naming the field', () => {
    expect(() => compileDeviceFilter([rule('a', -1, -1, 'rwm', false), rule('c', -1, -1, 'rw', true), rule('c', 1, 5, 'w', false)])).toThrow(
      /^linux\.resources\.devices: rule not supported/,
    );
  });

  test('bad OCI rules are one-line errors naming the field', () => {
    expect(() => deviceRulesFromOci([{ allow: true, type: 'x', access: 'r' }])).toThrow(
      'linux.resources.devices[0].type: unknown device type, must be "a", "b" or "c" (got "x")',
    );
    expect(() => deviceRulesFromOci([{ allow: true, type: 'c', access: 'rx' }])).toThrow(/^linux\.resources\.devices\[0\]\.access: /);
    expect(() => deviceRulesFromOci([{ allow: true, type: 'c', major: -2, access: 'r' }])).toThrow(/^linux\.resources\.devices\[0\]\.major: /);
  });
});

describe('BpfDeviceLoader against FakeBpf', () => {
  function dir(): { tree: FakeCgroupTree; d: string } {
    const tree = new FakeCgroupTree({ mode: 'unified' });
    trees.push(tree);
    return { tree, d: tree.root };
  }

  test('loads and attaches; an update attaches the new program before detaching the old one', async () => {
    const { d } = dir();
    const bpf = new FakeBpf();
    const loader = new BpfDeviceLoader(bpf);
    await loader.apply(d, [rule('a', -1, -1, 'rwm', false), rule('c', 1, 3, 'rwm', true)]);
    expect(bpf.attachedTo(d)).toEqual([1]);
    expect(bpf.allows(d, req('c', 1, 3, 'r'))).toBe(true);
    expect(bpf.allows(d, req('c', 1, 5, 'r'))).toBe(false);
    await loader.apply(d, [rule('a', -1, -1, 'rwm', false), rule('c', 1, 5, 'rwm', true)]);
    expect(bpf.calls).toEqual(['load 13 Apache', 'attach 1', 'load 13 Apache', 'attach 2', 'detach 1']);
    expect(bpf.attachedTo(d)).toEqual([2]);
    expect(bpf.allows(d, req('c', 1, 3, 'r'))).toBe(false);
    expect(bpf.allows(d, req('c', 1, 5, 'r'))).toBe(true);
    // No fd is left open, and the old program is freed.
    expect(bpf.liveIds()).toEqual([2]);
  });

  test('a refused program: the error names the field and carries the verifier log; nothing attached', async () => {
    const { d } = dir();
    const bpf = new FakeBpf();
    bpf.failLoad = { errno: 13, log: '0: (61) r2 = *(u32 *)(r1 +0)\nR0 !read_ok' };
    const err = (await new BpfDeviceLoader(bpf).apply(d, effectiveDeviceRules([])).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/^linux\.resources\.devices: cgroup v2: load the device program \(.*\): bpf\(BPF_PROG_LOAD\): 0: \(61\)/);
    expect(err.message).toContain('R0 !read_ok');
    expect(bpf.attachedTo(d)).toEqual([]);
  });

  test('a missing directory fails naming the field, before loading anything', async () => {
    const bpf = new FakeBpf();
    await expect(new BpfDeviceLoader(bpf).apply('/nonexistent/vk-cg', effectiveDeviceRules([]))).rejects.toThrow(
      /^linux\.resources\.devices: cgroup v2: open the cgroup directory/,
    );
    expect(bpf.calls).toEqual([]);
  });

  test('bad rules are refused before any bpf call', async () => {
    const { d } = dir();
    const bpf = new FakeBpf();
    await expect(
      new BpfDeviceLoader(bpf).apply(d, [rule('a', -1, -1, 'rwm', false), rule('c', -1, -1, 'rw', true), rule('c', 1, 5, 'w', false)]),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(bpf.calls).toEqual([]);
  });
});

describe('the v2 driver uses device programs', () => {
  function setup(extra: { bpf?: FakeBpf } = {}) {
    const tree = new FakeCgroupTree({ mode: 'unified' });
    trees.push(tree);
    const m = createCgroupManager({ id: 'c1', cgroupsPath: '/vk/c1', root: tree.root, host: tree.host, fs: tree.fs, warn: () => undefined, ...extra });
    return { tree, m, dir: tree.p('vk', 'c1') };
  }

  test('create: deny-all plus the defaults plus the user rules; update replaces; destroy leaves no program', async () => {
    const bpf = new FakeBpf();
    const { m, dir } = setup({ bpf });
    await m.create({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'r' }] });
    expect(bpf.attachedTo(dir)).toHaveLength(1);
    expect(bpf.allows(dir, req('c', 1, 3, 'rw'))).toBe(true);
    expect(bpf.allows(dir, req('c', 1, 11, 'r'))).toBe(true);
    expect(bpf.allows(dir, req('c', 1, 11, 'w'))).toBe(false);
    expect(bpf.allows(dir, req('b', 8, 0, 'r'))).toBe(false);

    await m.update({ devices: [{ allow: false, access: 'rwm' }] });
    expect(bpf.attachedTo(dir)).toHaveLength(1);
    expect(bpf.allows(dir, req('c', 1, 11, 'r'))).toBe(false);
    expect(bpf.allows(dir, req('c', 1, 3, 'rw'))).toBe(true);

    // An update without devices leaves the program alone.
    const before = bpf.attachedTo(dir);
    await m.update({ pids: { limit: 10 } });
    expect(bpf.attachedTo(dir)).toEqual(before);

    await m.destroy();
    expect(bpf.liveIds()).toEqual([]);
  });

  test('create without devices still confines (deny-all + defaults), as runc', async () => {
    const bpf = new FakeBpf();
    const { m, dir } = setup({ bpf });
    await m.create({});
    expect(bpf.allows(dir, req('c', 1, 11, 'r'))).toBe(false);
    expect(bpf.allows(dir, req('c', 1, 9, 'r'))).toBe(true);
    expect(DEFAULT_DEVICE_RULES.length).toBe(11);
  });

  test('a wildcard hole is refused naming the field before anything is created', async () => {
    const bpf = new FakeBpf();
    const { m, tree } = setup({ bpf });
    const err = await m
      .create({ devices: [{ allow: true, type: 'c', access: 'rw' }, { allow: false, type: 'c', major: 1, minor: 5, access: 'w' }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/^linux\.resources\.devices: /);
    expect((err as Error).message).not.toContain('\n');
    expect(tree.listDirs()).toEqual([]);
    expect(bpf.calls).toEqual([]);
  });

  test('an unknown device type is a one-line error naming the field, nothing created', async () => {
    const bpf = new FakeBpf();
    const { m, tree } = setup({ bpf });
    await expect(m.create({ devices: [{ allow: true, type: 'x', access: 'r' }] })).rejects.toThrow(
      /^linux\.resources\.devices\[0\]\.type: unknown device type/,
    );
    expect(tree.listDirs()).toEqual([]);
  });

  test('a fake file system without a loader or bpf seam: NotImplemented, nothing created', async () => {
    const { m, tree } = setup();
    await expect(m.create({})).rejects.toBeInstanceOf(NotImplementedError);
    expect(tree.listDirs()).toEqual([]);
  });
});
