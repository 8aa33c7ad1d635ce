import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { InvalidArgumentError } from '../../runtime/errors';
import { agentMessage, SECCOMP_FD_NAME } from '../../runtime/seccomp/agent-message';
import { cacheKey, compileSeccomp, evictCache, MAX_CACHE_ENTRIES } from '../../runtime/seccomp/compile';
import {
  actionValue,
  KNOWN_ACTIONS,
  KNOWN_ARCHITECTURES,
  KNOWN_FLAGS,
  KNOWN_OPERATORS,
  OPERATORS,
  seccompFeatures,
} from '../../runtime/seccomp/constants';
import { defaultSeccompProfile } from '../../runtime/seccomp/default-profile';
import { buildPlan, encodePlan, filterFlags } from '../../runtime/seccomp/plan';
import { validateSeccomp, ValidatedSeccomp } from '../../runtime/seccomp/validate';
import { OciState, Seccomp } from '../../runtime/spec/types';

function valid(s: unknown): ValidatedSeccomp {
  const v = validateSeccomp(s);
  if (!v) throw new Error('expected an enabled profile');
  return v;
}

function errorOf(s: unknown): InvalidArgumentError {
  try {
    validateSeccomp(s);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected validateSeccomp to throw');
}

const allow = (names: string[], extra: Record<string, unknown> = {}) => ({ names, action: 'SCMP_ACT_ALLOW', ...extra });

describe('validateSeccomp', () => {
  it('treats no defaultAction and no syscalls as disabled, like runc', () => {
    expect(validateSeccomp(undefined)).toBeNull();
    expect(validateSeccomp(null)).toBeNull();
    expect(validateSeccomp({})).toBeNull();
    expect(validateSeccomp({ defaultAction: '', syscalls: [] })).toBeNull();
  });

  it('accepts a full profile and normalises it', () => {
    const v = valid({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 38,
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64'],
      flags: ['SECCOMP_FILTER_FLAG_LOG'],
      syscalls: [
        allow(['read', 'write', 'read']),
        { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
        { names: ['mkdir'], action: 'SCMP_ACT_TRACE', errnoRet: 1000 },
      ],
    });
    expect(v.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(v.defaultErrnoRet).toBe(38);
    expect(v.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    expect(v.flags).toEqual(['SECCOMP_FILTER_FLAG_LOG']);
    expect(v.rules[0].names).toEqual(['read', 'write']);
    expect(v.rules[1].args).toEqual([{ index: 0, op: 'SCMP_CMP_EQ', value: 8n, valueTwo: 0n }]);
    expect(v.rules[2].errnoRet).toBe(1000);
    expect(v.notify).toBe(false);
    expect(v.warnings).toEqual([]);
  });

  it.each<[string, unknown, string]>([
    ['not an object', [], 'linux.seccomp: must be an object (got [])'],
    ['unknown default action', { defaultAction: 'SCMP_ACT_FOO' }, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"'],
    ['missing default action', { syscalls: [allow(['read'])] }, 'linux.seccomp.defaultAction: must be a string (got undefined)'],
    [
      'unknown rule action',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [allow(['a']), allow(['b']), allow(['c']), { names: ['d'], action: 'SCMP_ACT_FOO' }] },
      'linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"',
    ],
    ['notify as default', { defaultAction: 'SCMP_ACT_NOTIFY' }, 'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action'],
    [
      'defaultErrnoRet with ALLOW',
      { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 },
      'linux.seccomp.defaultErrnoRet: only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, but linux.seccomp.defaultAction is "SCMP_ACT_ALLOW"',
    ],
    [
      'errnoRet with LOG',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_LOG', errnoRet: 1 }] },
      'linux.seccomp.syscalls[0].errnoRet: only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, but linux.seccomp.syscalls[0].action is "SCMP_ACT_LOG"',
    ],
    [
      'errno out of range',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 4096 }] },
      'linux.seccomp.syscalls[0].errnoRet: must be an integer in 0..4095 (got 4096)',
    ],
    [
      'negative defaultErrnoRet',
      { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 },
      'linux.seccomp.defaultErrnoRet: must be an integer in 0..4095 (got -1)',
    ],
    [
      'unknown architecture',
      { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_Z80'] },
      'linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_Z80"',
    ],
    ['unknown flag', { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NOPE'] }, 'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NOPE"'],
    ['flags not an array', { defaultAction: 'SCMP_ACT_ALLOW', flags: 'x' }, 'linux.seccomp.flags: must be an array (got "x")'],
    ['syscall not an object', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [5] }, 'linux.seccomp.syscalls[0]: must be an object (got 5)'],
    ['names missing', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ action: 'SCMP_ACT_ALLOW' }] }, 'linux.seccomp.syscalls[0].names: is required'],
    ['names empty', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [allow([])] }, 'linux.seccomp.syscalls[0].names: must contain at least one entry'],
    ['name not a string', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [allow(['read', 7 as unknown as string])] }, 'linux.seccomp.syscalls[0].names[1]: must be a string (got 7)'],
    ['empty name', { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [allow([''])] }, 'linux.seccomp.syscalls[0].names[0]: must not be empty'],
    [
      'arg index 6',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] },
      'linux.seccomp.syscalls[0].args[0].index: must be an integer in 0..5 (got 6)',
    ],
    [
      'unknown operator',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_XOR' }] }] },
      'linux.seccomp.syscalls[0].args[0].op: unknown operator "SCMP_CMP_XOR"',
    ],
    [
      'missing value',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, op: 'SCMP_CMP_EQ' }] }] },
      'linux.seccomp.syscalls[0].args[0].value: is required',
    ],
    [
      'negative value',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }] },
      'linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer (got -1)',
    ],
    [
      'value beyond 2^53',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 2 ** 64, op: 'SCMP_CMP_EQ' }] }] },
      'linux.seccomp.syscalls[0].args[0].value: must be at most 2^53-1: larger JSON numbers are not exact (got 18446744073709552000)',
    ],
    [
      'fractional valueTwo',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, valueTwo: 1.5, op: 'SCMP_CMP_MASKED_EQ' }] }] },
      'linux.seccomp.syscalls[0].args[0].valueTwo: must be a non-negative integer (got 1.5)',
    ],
    [
      'notify without listenerPath',
      { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] },
      'linux.seccomp.listenerPath: is required when a rule uses SCMP_ACT_NOTIFY',
    ],
    [
      'relative listenerPath',
      { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: 'agent.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] },
      'linux.seccomp.listenerPath: must be an absolute path (got "agent.sock")',
    ],
    ['metadata without listenerPath', { defaultAction: 'SCMP_ACT_ALLOW', listenerMetadata: 'x' }, 'linux.seccomp.listenerMetadata: must not be set without listenerPath'],
    [
      'notify on write',
      { defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/a.sock', syscalls: [{ names: ['mkdir', 'write'], action: 'SCMP_ACT_NOTIFY' }] },
      'linux.seccomp.syscalls[0].names[1]: SCMP_ACT_NOTIFY cannot be used for "write": the runtime needs it to pass the listener fd on',
    ],
  ])('refuses %s, naming the field', (_what, input, message) => {
    const err = errorOf(input);
    expect(err.message).toBe(message);
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(message.startsWith(err.field!)).toBe(true);
    expect(err.message).not.toMatch(/\n/);
  });

  it('accepts u64 values as bigint', () => {
    const v = valid({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: (1n << 64n) - 1n, op: 'SCMP_CMP_EQ' }] }],
    });
    expect(v.rules[0].args[0].value).toBe(18446744073709551615n);
    expect(() =>
      validateSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1n << 64n, op: 'SCMP_CMP_EQ' }] }] }),
    ).toThrow('linux.seccomp.syscalls[0].args[0].value: must be an integer in 0..2^64-1 (got 18446744073709551616)');
  });

  it('skips names that cannot be syscalls with a warning', () => {
    const v = valid({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'no such', 'x;y'], action: 'SCMP_ACT_ERRNO' }] });
    expect(v.rules[0].names).toEqual(['mkdir']);
    expect(v.warnings).toEqual([
      'linux.seccomp.syscalls[0].names[1]: unknown syscall "no such" skipped',
      'linux.seccomp.syscalls[0].names[2]: unknown syscall "x;y" skipped',
    ]);
  });

  it('keeps listener fields only when a rule notifies', () => {
    const n = valid({
      defaultAction: 'SCMP_ACT_ALLOW',
      listenerPath: '/run/agent.sock',
      listenerMetadata: 'meta',
      syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
    });
    expect(n).toMatchObject({ notify: true, listenerPath: '/run/agent.sock', listenerMetadata: 'meta' });
    const plain = valid({ defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock', syscalls: [allow(['x'])] });
    expect(plain.notify).toBe(false);
    expect(plain.listenerPath).toBeUndefined();
  });

  it('drops WAIT_KILLABLE_RECV without a NOTIFY rule, with a warning', () => {
    const v = valid({ defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV', 'SECCOMP_FILTER_FLAG_LOG'] });
    expect(v.flags).toEqual(['SECCOMP_FILTER_FLAG_LOG']);
    expect(v.warnings[0]).toMatch(/WAIT_KILLABLE_RECV ignored/);
  });

  it('tells unset flags (default) from an empty list', () => {
    expect(valid({ defaultAction: 'SCMP_ACT_ALLOW' }).flags).toBeUndefined();
    expect(valid({ defaultAction: 'SCMP_ACT_ALLOW', flags: null }).flags).toBeUndefined();
    expect(valid({ defaultAction: 'SCMP_ACT_ALLOW', flags: [] }).flags).toEqual([]);
  });
});

describe('action and operator mapping', () => {
  it('maps actions to libseccomp values', () => {
    expect(actionValue('SCMP_ACT_KILL')).toBe(0);
    expect(actionValue('SCMP_ACT_KILL_THREAD')).toBe(0);
    expect(actionValue('SCMP_ACT_KILL_PROCESS')).toBe(0x80000000);
    expect(actionValue('SCMP_ACT_TRAP')).toBe(0x00030000);
    expect(actionValue('SCMP_ACT_ERRNO')).toBe(0x00050001);
    expect(actionValue('SCMP_ACT_ERRNO', 95)).toBe(0x0005005f);
    expect(actionValue('SCMP_ACT_ERRNO', 0)).toBe(0x00050000);
    expect(actionValue('SCMP_ACT_TRACE')).toBe(0x7ff00001);
    expect(actionValue('SCMP_ACT_TRACE', 0xffff)).toBe(0x7ff0ffff);
    expect(actionValue('SCMP_ACT_LOG')).toBe(0x7ffc0000);
    expect(actionValue('SCMP_ACT_ALLOW')).toBe(0x7fff0000);
    expect(actionValue('SCMP_ACT_NOTIFY')).toBe(0x7fc00000);
    expect(actionValue('SCMP_ACT_LOG', 5)).toBe(0x7ffc0000);
  });

  it('maps operators to enum scmp_compare', () => {
    expect(OPERATORS).toEqual({
      SCMP_CMP_NE: 1,
      SCMP_CMP_LT: 2,
      SCMP_CMP_LE: 3,
      SCMP_CMP_EQ: 4,
      SCMP_CMP_GE: 5,
      SCMP_CMP_GT: 6,
      SCMP_CMP_MASKED_EQ: 7,
    });
  });

  it('exports the lists for vkernel features', () => {
    expect(KNOWN_ACTIONS).toHaveLength(9);
    expect(KNOWN_OPERATORS).toHaveLength(7);
    expect(KNOWN_ARCHITECTURES).toContain('SCMP_ARCH_X86_64');
    expect(KNOWN_ARCHITECTURES).toContain('SCMP_ARCH_RISCV64');
    expect(KNOWN_FLAGS).toEqual([
      'SECCOMP_FILTER_FLAG_TSYNC',
      'SECCOMP_FILTER_FLAG_LOG',
      'SECCOMP_FILTER_FLAG_SPEC_ALLOW',
      'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV',
    ]);
    const f = seccompFeatures(1 | 4);
    expect(f).toMatchObject({ enabled: true, supportedFlags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'] });
    expect(seccompFeatures().supportedFlags).toBeUndefined();
  });
});

describe('plan', () => {
  it('flattens a profile into the documented text', () => {
    const v = valid({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'],
      syscalls: [
        allow(['read', 'write']),
        { names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 95 },
        { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
        { names: ['kill'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 1, op: 'SCMP_CMP_GT' }, { index: 1, value: 9, op: 'SCMP_CMP_NE' }] },
      ],
    });
    expect(encodePlan(buildPlan(v))).toBe(
      [
        'vkseccomp 1',
        'default 327681',
        'arch x86_64',
        'arch x32',
        'rule 0 read 2147418112 0',
        'rule 0 write 2147418112 0',
        'rule 1 mkdir 327775 0',
        'rule 2 clone 2147418112 1 0 7 2114060288 0',
        'rule 3 kill 2147418112 2 0 6 1 0 1 1 9 0',
        'end',
        '',
      ].join('\n'),
    );
  });

  it('drops rules whose action is the default action, errno included (as runc)', () => {
    const v = valid({
      defaultAction: 'SCMP_ACT_ERRNO',
      defaultErrnoRet: 1,
      syscalls: [
        { names: ['a'], action: 'SCMP_ACT_ERRNO' },
        { names: ['b'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
        { names: ['c'], action: 'SCMP_ACT_ERRNO', errnoRet: 2 },
      ],
    });
    expect(buildPlan(v).rules.map((r) => r.syscall)).toEqual(['c']);
  });

  it('splits comparisons on the same argument into separate rules (OR), as runc', () => {
    const v = valid({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          names: ['personality', 'x'],
          action: 'SCMP_ACT_ERRNO',
          args: [
            { index: 0, value: 4, op: 'SCMP_CMP_EQ' },
            { index: 0, value: 6, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 1, op: 'SCMP_CMP_EQ' },
          ],
        },
      ],
    });
    const rules = buildPlan(v).rules;
    expect(rules.map((r) => [r.syscall, r.compares.map((c) => [c.arg, c.a])])).toEqual([
      ['personality', [[0, 4n]]],
      ['personality', [[0, 6n]]],
      ['personality', [[1, 1n]]],
      ['x', [[0, 4n]]],
      ['x', [[0, 6n]]],
      ['x', [[1, 1n]]],
    ]);
  });

  it('writes u64 values exactly and asks for the binary tree above 32 syscalls', () => {
    const names = Array.from({ length: 33 }, (_, i) => `s${i}`);
    const v = valid({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { names, action: 'SCMP_ACT_KILL_PROCESS' },
        { names: ['y'], action: 'SCMP_ACT_LOG', args: [{ index: 5, value: 18446744073709551615n, valueTwo: 3, op: 'SCMP_CMP_LE' }] },
      ],
    });
    const plan = buildPlan(v);
    expect(plan.optimize).toBe(2);
    const text = encodePlan(plan);
    expect(text).toContain('\noptimize 2\n');
    expect(text).toContain('\nrule 1 y 2147221504 1 5 3 18446744073709551615 3\n');
    expect(buildPlan(valid({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['a'], action: 'SCMP_ACT_LOG' }] })).optimize).toBeUndefined();
  });
});

describe('filterFlags', () => {
  const base = { defaultAction: 'SCMP_ACT_ALLOW' };
  it('defaults to SPEC_ALLOW when the kernel has it', () => {
    expect(filterFlags(valid(base), 63)).toBe(4);
    expect(filterFlags(valid(base), 3)).toBe(0);
    expect(filterFlags(valid({ ...base, flags: [] }), 63)).toBe(0);
  });
  it('sets the requested flags', () => {
    expect(filterFlags(valid({ ...base, flags: ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG'] }), 63)).toBe(3);
  });
  it('adds NEW_LISTENER for NOTIFY, and TSYNC_ESRCH with TSYNC', () => {
    const notify = { ...base, listenerPath: '/run/a.sock', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }] };
    expect(filterFlags(valid(notify), 63)).toBe(4 | 8);
    expect(filterFlags(valid({ ...notify, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }), 63)).toBe(8 | 32);
    expect(filterFlags(valid({ ...notify, flags: ['SECCOMP_FILTER_FLAG_TSYNC'] }), 63)).toBe(1 | 8 | 16);
  });
});

describe('cacheKey', () => {
  it('is a stable sha256 of compiler identity and plan', () => {
    const plan = encodePlan(buildPlan(valid(defaultSeccompProfile({ arch: 'x64' }))));
    const again = encodePlan(buildPlan(valid(defaultSeccompProfile({ arch: 'x64' }))));
    expect(cacheKey(plan, 'c:1:2')).toBe(cacheKey(again, 'c:1:2'));
    expect(cacheKey(plan, 'c:1:2')).toMatch(/^[0-9a-f]{64}$/);
    expect(cacheKey(plan, 'c:1:3')).not.toBe(cacheKey(plan, 'c:1:2'));
    expect(cacheKey(plan.replace('default 327681', 'default 327682'), 'c:1:2')).not.toBe(cacheKey(plan, 'c:1:2'));
    expect(cacheKey('vkseccomp 1\nend\n', 'x')).toBe('07f474e17d406132b804ae0ae427d408cbb19b1031a82586e51f817adb2ceae9');
  });
});

describe('agentMessage', () => {
  const state: OciState = { ociVersion: '1.0.2', id: 'c1', status: 'creating', pid: 4422, bundle: '/b', annotations: { k: 'v' } };
  it('builds the runtime-spec container process state', () => {
    expect(JSON.parse(agentMessage(state, 4422, 'MKNOD=/dev/null'))).toEqual({
      ociVersion: '1.0.2-dev',
      fds: [SECCOMP_FD_NAME],
      pid: 4422,
      metadata: 'MKNOD=/dev/null',
      state,
    });
    expect(SECCOMP_FD_NAME).toBe('seccompFd');
  });
  it('omits empty metadata and refuses bad pids', () => {
    expect(JSON.parse(agentMessage(state, 7))).not.toHaveProperty('metadata');
    expect(JSON.parse(agentMessage(state, 7, ''))).not.toHaveProperty('metadata');
    expect(() => agentMessage(state, 0)).toThrow(RangeError);
  });
});

describe('defaultSeccompProfile', () => {
  it('is valid and refuses the keyring and user namespaces', () => {
    const p = defaultSeccompProfile({ arch: 'x64' });
    const v = valid(p);
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    const allowed = v.rules.filter((r) => r.action === 'SCMP_ACT_ALLOW' && r.args.length === 0).flatMap((r) => r.names);
    for (const n of ['read', 'write', 'execve', 'openat', 'mmap', 'futex', 'exit_group', 'faccessat2']) expect(allowed).toContain(n);
    for (const n of ['keyctl', 'add_key', 'request_key', 'unshare', 'clone', 'mount', 'bpf', 'kexec_load', 'init_module', 'reboot']) {
      expect(allowed).not.toContain(n);
    }
    const clone = v.rules.find((r) => r.names.includes('clone'))!;
    expect(clone.args).toEqual([{ index: 0, op: 'SCMP_CMP_MASKED_EQ', value: 0x7e020000n, valueTwo: 0n }]);
    const unshare = v.rules.find((r) => r.names.includes('unshare'))!;
    expect(unshare.args[0].value & 0x10000000n).toBe(0x10000000n);
    expect(v.rules.find((r) => r.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  it('lets capabilities unlock their syscalls but never CLONE_NEWUSER or the keyring', () => {
    const v = valid(defaultSeccompProfile({ arch: 'arm64', capabilities: ['CAP_SYS_ADMIN', 'CAP_SYS_CHROOT'] }));
    const allowed = v.rules.filter((r) => r.action === 'SCMP_ACT_ALLOW' && r.args.length === 0).flatMap((r) => r.names);
    expect(allowed).toEqual(expect.arrayContaining(['mount', 'umount2', 'setns', 'chroot']));
    expect(allowed).not.toContain('keyctl');
    expect(v.rules.find((r) => r.names.includes('clone'))!.args[0].value).toBe(0x10000000n);
    expect(v.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });

  it('compares the right clone argument on s390x', () => {
    const v = valid(defaultSeccompProfile({ arch: 's390x' }));
    expect(v.rules.find((r) => r.names.includes('clone'))!.args[0].index).toBe(1);
  });
});

describe('compileSeccomp with a stand-in compiler', () => {
  let dir: string;
  let compiler: string;
  let counter: string;

  // A shell stand-in for build/vkseccomp: counts its runs, answers --probe, emits 2
  // instructions, warns about a syscall named "unknownsyscall", fails on "failsyscall".
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vk-seccomp-unit-'));
    compiler = path.join(dir, 'fake-vkseccomp');
    counter = path.join(dir, 'runs');
    fs.writeFileSync(
      compiler,
      `#!/bin/sh
echo run >> '${counter}'
if [ "$1" = --probe ]; then printf 'flags 63\\nactions 2147483648,0,196608,327680,2143289344,2146435072,2147221504,2147418112\\nlibseccomp 2.5.4 6\\n'; exit 0; fi
plan=$(cat)
case "$plan" in *failsyscall*) echo 'error rule 0 failsyscall: Invalid argument' >&2; exit 1;; esac
case "$plan" in *unknownsyscall*) echo 'warning unknown-syscall 0 unknownsyscall' >&2;; esac
printf '0123456789abcdef'
`,
      { mode: 0o755 },
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const runs = () => (fs.existsSync(counter) ? fs.readFileSync(counter, 'utf8').split('\n').filter(Boolean).length : 0);
  const profile = (name: string): Seccomp => ({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [name], action: 'SCMP_ACT_ERRNO' }] });

  it('compiles once and then serves the cache without spawning', async () => {
    const cacheDir = path.join(dir, 'cache1');
    const logs: string[] = [];
    const first = await compileSeccomp(profile('unknownsyscall'), { cacheDir, compiler, log: (m) => logs.push(m) });
    expect(first).toMatchObject({ flags: 4, notify: false, cached: false });
    expect(fs.readFileSync(first!.bpfPath, 'utf8')).toBe('0123456789abcdef');
    expect(logs).toEqual(['linux.seccomp.syscalls[0]: unknown syscall skipped: "unknownsyscall"']);
    const before = runs();
    const second = await compileSeccomp(profile('unknownsyscall'), { cacheDir, compiler, log: (m) => logs.push(m) });
    expect(runs()).toBe(before);
    expect(second).toMatchObject({ bpfPath: first!.bpfPath, cached: true, warnings: first!.warnings });
    expect(logs).toHaveLength(2);
    expect((await compileSeccomp({ defaultAction: '' }, { cacheDir, compiler }))).toBeNull();
  });

  it('reports compiler errors against the config field', async () => {
    await expect(compileSeccomp(profile('failsyscall'), { cacheDir: path.join(dir, 'cache2'), compiler })).rejects.toThrow(
      'linux.seccomp.syscalls[0]: cannot add a rule for syscall "failsyscall": invalid argument',
    );
  });

  it('refuses a missing compiler with a hint', async () => {
    await expect(compileSeccomp(profile('x'), { cacheDir: path.join(dir, 'cache3'), compiler: path.join(dir, 'nope') })).rejects.toThrow(
      /seccomp compiler .*nope is missing or not executable \(make native, or set VKERNEL_SECCOMP\)/,
    );
  });

  it(`keeps at most ${MAX_CACHE_ENTRIES} filters, dropping the least recently used`, async () => {
    const cacheDir = path.join(dir, 'cache4');
    const keep = await compileSeccomp(profile('s0'), { cacheDir, compiler });
    for (let i = 1; i < MAX_CACHE_ENTRIES + 6; i++) {
      await compileSeccomp(profile(`s${i}`), { cacheDir, compiler });
      if (i % 10 === 0) await compileSeccomp(profile('s0'), { cacheDir, compiler }); // a hit refreshes s0
      await new Promise((r) => setTimeout(r, 2));
    }
    const bpfs = fs.readdirSync(cacheDir).filter((n) => n.endsWith('.bpf'));
    expect(bpfs).toHaveLength(MAX_CACHE_ENTRIES);
    expect(fs.existsSync(keep!.bpfPath)).toBe(true);
    await evictCache(cacheDir, 3);
    expect(fs.readdirSync(cacheDir).filter((n) => n.endsWith('.bpf'))).toHaveLength(3);
  });
});
