// linux.seccomp with real containers through the CLI: every action, every argument
// operator, defaultAction/defaultErrnoRet, architectures, flags, exec'd processes and the
// default profile — each observed from inside (errno, exit status, signal) and, where the
// kernel is the only witness (LOG, KILL_THREAD vs KILL_PROCESS, SECCOMP_FILTER_FLAG_LOG),
// in the kernel log's audit records (type=1326, code=<action>).
//
// Probes with controlled arguments, from the payload and busybox only:
//   tgkill(pid, tid, SIG)   `vktest kill SIG` (raise): a blocked call makes it print
//                           "raise SIG: <strerror>" and exit 1; an allowed one delivers SIG
//                           (fatal outside pid 1: exit 128+SIG; pid 1 survives and exits 1
//                           with "still alive").
//   openat(.., flags, ..)   `vktest tryopen PATH r|w|rw` prints errno=N (flags include
//                           O_CLOEXEC|O_NONBLOCK: r 0x80800, w 0x80801, rw 0x80802). Rules
//                           on openat must not match runc's own O_WRONLY|O_CLOEXEC open of
//                           its exec fifo, which runc 1.1 does after loading the filter.
//   mkdir/mkdirat           busybox mkdir prints strerror(errno).
// The default profile's keyring and user-namespace denials are observed in a container by
// seccomp-default.test.ts (the payload's `syscall` command).
//
// runc 1.1.5 refuses every seccomp flag ("seccomp flags are not yet supported by runc");
// for flags the suite asserts that refusal, and a clean failure, when RUNTIME=runc.
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Seccomp, SeccompSyscall, Spec } from '../../runtime/spec/types';
import { defaultSeccompProfile } from '../../runtime/seccomp/default-profile';
import {
  cleanupRuntimeRoot,
  commandSucceeds,
  describeIf,
  makeBundle,
  parseErrno,
  parseKeyValues,
  requireFixtures,
  requirement,
  requireRoot,
  requireRuntime,
  runBundle,
  runRuntime,
  runRuntimeOk,
  runtimeName,
  runtimeRoot,
  vktest,
  withLeakCheck,
  type Bundle,
  type RunResult,
} from '../harness';

const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime() &&
  requirement(process.arch === 'x64', 'the syscall numbers in the audit checks are x86_64') &&
  requirement(commandSucceeds('dmesg', []), 'dmesg (the kernel log) must be readable');
const isRunc = runtimeName() === 'runc';

const EPERM = 1;
const ENOSYS = 38;
const SIGSYS_EXIT = 128 + 31;
const NR_OPENAT = 257;
const NR_TGKILL = 234;
/** tryopen flags values (see above). */
const O_W = 0x80801;
const O_RW = 0x80802;
/** Kernel SECCOMP_RET_* values as printed in audit records (code=0x...). */
const RET = { KILL_THREAD: 0x0, KILL_PROCESS: 0x80000000, TRAP: 0x30000, ERRNO: 0x50000, TRACE: 0x7ff00000, LOG: 0x7ffc0000 };

const RUNC_NO_FLAGS = /seccomp flags are not yet supported by runc/;

/** Asserts the exit code; a mismatch shows the output (toMatchObject would hide it). */
function expectCode(r: RunResult, code: number): void {
  if (r.code !== code) throw new Error(`exit code ${r.code}, expected ${code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Asserts a non-zero exit; success shows the output. */
function expectFailed(r: RunResult): void {
  if (r.code === 0) throw new Error(`exit code 0, expected a failure\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

// ---------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function allowAll(...syscalls: SeccompSyscall[]): Seccomp {
  return { defaultAction: 'SCMP_ACT_ALLOW', syscalls };
}

function withSeccomp(seccomp: Seccomp | undefined, more?: (s: Spec) => void): (s: Spec) => void {
  return (s) => {
    if (seccomp) s.linux!.seccomp = seccomp;
    more?.(s);
  };
}

/** A bundle running `args` under `seccomp`, run in the foreground. */
async function runUnder(seccomp: Seccomp | undefined, args: string[], more?: (s: Spec) => void): Promise<RunResult & { bundle: Bundle }> {
  const b = await makeBundle({ args, mutate: withSeccomp(seccomp, more) });
  return { ...(await runBundle(b)), bundle: b };
}

/** Lines "sigN=code" from the kill probe loop below. */
function killProbe(signals: number[]): string[] {
  return ['/bin/sh', '-c', `for s in ${signals.join(' ')}; do /vktest kill $s; echo sig$s=$?; done`];
}

/** sig → 'blocked' (raise failed with ENOSYS) | 'delivered' (killed by it). */
function killOutcomes(r: RunResult, signals: number[]): Record<number, string> {
  const kv = parseKeyValues(r.stdout);
  const out: Record<number, string> = {};
  for (const s of signals) {
    const code = Number(kv[`sig${s}`]);
    const blocked = code === 1 && r.stderr.includes(`raise ${s}: Function not implemented`);
    out[s] = blocked ? 'blocked' : code === 128 + s ? 'delivered' : `exit ${kv[`sig${s}`]}`;
  }
  return out;
}

/** A fresh 12-character command name: the comm of a process exec'd through a symlink. */
function uniqueComm(): string {
  return `c-${crypto.randomBytes(5).toString('hex')}`;
}

/** /<comm> → /vktest inside the bundle's rootfs, so audit records can be told apart. */
function linkPayload(b: Bundle, comm: string): void {
  fs.symlinkSync('vktest', path.join(b.rootfs, comm));
}

function kernelLog(): string[] {
  return execFileSync('dmesg', [], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n');
}

/** The seccomp audit record (type=1326) of a process named `comm`, if the kernel logged one within ms. */
async function auditRecord(comm: string, ms = 2000): Promise<string | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const line = kernelLog().find((l) => l.includes('type=1326') && l.includes(`comm="${comm}"`));
    if (line || Date.now() >= end) return line;
    await sleep(50);
  }
}

function field(record: string, name: string): string | undefined {
  return new RegExp(`\\b${name}=(\\S+)`).exec(record)?.[1];
}

/**
 * Runs attempt(comm) until the kernel logged a record for comm (printk rate limiting can
 * drop one when other tests log a lot); returns the record.
 */
async function withAuditRecord(attempt: (comm: string) => Promise<void>, tries = 3): Promise<string> {
  for (let i = 0; i < tries; i++) {
    const comm = uniqueComm();
    await attempt(comm);
    const rec = await auditRecord(comm);
    if (rec) return rec;
  }
  throw new Error(`no seccomp audit record in the kernel log after ${tries} attempts`);
}

/** create fails cleanly: non-zero, the message, no container left. */
async function expectCreateFails(seccomp: unknown, message: RegExp): Promise<void> {
  const b = await makeBundle({ args: vktest('echo', 'never'), mutate: (s) => (s.linux!.seccomp = seccomp as Seccomp) });
  const r = await runRuntime(['create', '--bundle', b.dir, b.id]);
  expectFailed(r);
  expect(r.stderr).toMatch(message);
  expect((await runRuntime(['state', b.id])).stderr).toMatch(/container does not exist/);
}

const mkdirRule = (action: string, errnoRet?: number): SeccompSyscall => ({
  names: ['mkdir', 'mkdirat'],
  action,
  ...(errnoRet !== undefined ? { errnoRet } : {}),
});

// ---------------------------------------------------------------------------------------

describeIf(ok)(`seccomp at runtime (${runtimeName()})`, () => {
  afterAll(() => {
    // vkernel caches compiled filters in <root>/.seccomp-cache: drop it with the private root.
    fs.rmSync(path.join(runtimeRoot(), '.seccomp-cache'), { recursive: true, force: true });
    cleanupRuntimeRoot();
  });

  describe('actions', () => {
    it('SCMP_ACT_ERRNO with errnoRet: mkdir fails with errno 38 inside, openat returns 38', () =>
      withLeakCheck(async () => {
        const r = await runUnder(allowAll(mkdirRule('SCMP_ACT_ERRNO', ENOSYS)), ['/bin/sh', '-c', 'mkdir /tmp/d; echo mkdir=$?; /vktest echo alive']);
        expectCode(r, 0);
        expect(r.stderr).toMatch(/mkdir: can't create directory '\/tmp\/d': Function not implemented/);
        expect(r.stdout).toMatch(/^mkdir=1$/m);
        expect(r.stdout).toMatch(/^alive$/m);
        expect(fs.existsSync(path.join(r.bundle.rootfs, 'tmp', 'd'))).toBe(false);

        const rule: SeccompSyscall = { names: ['openat'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, args: [{ index: 2, value: O_W, op: 'SCMP_CMP_EQ' }] };
        const w = await runUnder(allowAll(rule), vktest('tryopen', '/dev/null', 'w'));
        expect(parseErrno(w.stdout)).toEqual({ errno: ENOSYS, errname: 'ENOSYS' });
      }));

    it('SCMP_ACT_ERRNO without errnoRet means EPERM', () =>
      withLeakCheck(async () => {
        const rule: SeccompSyscall = { names: ['openat'], action: 'SCMP_ACT_ERRNO', args: [{ index: 2, value: O_W, op: 'SCMP_CMP_EQ' }] };
        const w = await runUnder(allowAll(rule), vktest('tryopen', '/dev/null', 'w'));
        expect(parseErrno(w.stdout)).toEqual({ errno: EPERM, errname: 'EPERM' });
        const r = await runUnder(allowAll(rule), vktest('tryopen', '/dev/null', 'r'));
        expect(parseErrno(r.stdout)).toEqual({ errno: 0, errname: 'OK' });
      }));

    // The kill actions and TRAP: tgkill(.., .., 12) from the payload as pid 1.
    const tgkill12 = (action: string): Seccomp => allowAll({ names: ['tgkill'], action, args: [{ index: 2, value: 12, op: 'SCMP_CMP_EQ' }] });

    it.each([
      ['SCMP_ACT_KILL', RET.KILL_THREAD],
      ['SCMP_ACT_KILL_THREAD', RET.KILL_THREAD],
      ['SCMP_ACT_KILL_PROCESS', RET.KILL_PROCESS],
    ])('%s kills the caller with SIGSYS (exit 159); the audit record shows the action', (action, code) =>
      withLeakCheck(async () => {
        const rec = await withAuditRecord(async (comm) => {
          const b = await makeBundle({ args: [`/${comm}`, 'kill', '12'], mutate: withSeccomp(tgkill12(action)) });
          linkPayload(b, comm);
          const r = await runBundle(b);
          expectCode(r, SIGSYS_EXIT);
          expect(r.stderr).not.toMatch(/still alive|raise/);
        });
        expect(field(rec, 'syscall')).toBe(String(NR_TGKILL));
        expect(field(rec, 'sig')).toBe('31');
        expect(Number(field(rec, 'code'))).toBe(code);
      }));

    it('SCMP_ACT_TRAP sends SIGSYS: exit 128+31, the call never happens', () =>
      withLeakCheck(async () => {
        const r = await runUnder(tgkill12('SCMP_ACT_TRAP'), vktest('kill', 12));
        expectCode(r, SIGSYS_EXIT);
        expect(r.stderr).not.toMatch(/still alive|raise/);
        const m = await runUnder(allowAll(mkdirRule('SCMP_ACT_TRAP')), ['/bin/mkdir', '/tmp/d']);
        expectCode(m, SIGSYS_EXIT);
        expect(fs.existsSync(path.join(m.bundle.rootfs, 'tmp', 'd'))).toBe(false);
      }));

    it('SCMP_ACT_TRACE without a tracer fails the call with ENOSYS (errnoRet is the tracer message only)', () =>
      withLeakCheck(async () => {
        const rule: SeccompSyscall = { names: ['openat'], action: 'SCMP_ACT_TRACE', errnoRet: 1234, args: [{ index: 2, value: O_W, op: 'SCMP_CMP_EQ' }] };
        const w = await runUnder(allowAll(rule), vktest('tryopen', '/dev/null', 'w'));
        expect(parseErrno(w.stdout)).toEqual({ errno: ENOSYS, errname: 'ENOSYS' });
        const m = await runUnder(allowAll(mkdirRule('SCMP_ACT_TRACE')), ['/bin/mkdir', '/tmp/d']);
        expectCode(m, 1);
        expect(m.stderr).toMatch(/Function not implemented/);
        expect(fs.existsSync(path.join(m.bundle.rootfs, 'tmp', 'd'))).toBe(false);
      }));

    it('SCMP_ACT_LOG allows the call and the kernel logs it', () =>
      withLeakCheck(async () => {
        const rule: SeccompSyscall = { names: ['openat'], action: 'SCMP_ACT_LOG', args: [{ index: 2, value: O_W, op: 'SCMP_CMP_EQ' }] };
        const rec = await withAuditRecord(async (comm) => {
          const b = await makeBundle({ args: [`/${comm}`, 'tryopen', '/dev/null', 'w'], mutate: withSeccomp(allowAll(rule)) });
          linkPayload(b, comm);
          const r = await runBundle(b);
          expectCode(r, 0);
          expect(parseErrno(r.stdout).errno).toBe(0);
        });
        expect(field(rec, 'syscall')).toBe(String(NR_OPENAT));
        expect(Number(field(rec, 'code'))).toBe(RET.LOG);
        const m = await runUnder(allowAll(mkdirRule('SCMP_ACT_LOG')), ['/bin/mkdir', '/tmp/d']);
        expectCode(m, 0);
        expect(fs.statSync(path.join(m.bundle.rootfs, 'tmp', 'd')).isDirectory()).toBe(true);
      }));

    it('SCMP_ACT_ALLOW with defaultAction SCMP_ACT_ERRNO: listed calls work, the rest fail EPERM', () =>
      withLeakCheck(async () => {
        // The default profile's allow lists without mkdir/mkdirat, default answer EPERM.
        const profile = defaultSeccompProfile();
        const syscalls = profile.syscalls!.map((s) =>
          s.action === 'SCMP_ACT_ALLOW' ? { ...s, names: s.names.filter((n) => n !== 'mkdir' && n !== 'mkdirat') } : s,
        );
        const seccomp: Seccomp = { defaultAction: 'SCMP_ACT_ERRNO', architectures: profile.architectures, syscalls };
        const r = await runUnder(seccomp, ['/bin/sh', '-c', '/vktest echo allowed; ls / >/dev/null && echo ls=$?; mkdir /tmp/d; echo mkdir=$?']);
        expectCode(r, 0);
        expect(r.stdout).toMatch(/^allowed$/m);
        expect(r.stdout).toMatch(/^ls=0$/m);
        expect(r.stdout).toMatch(/^mkdir=1$/m);
        expect(r.stderr).toMatch(/can't create directory '\/tmp\/d': Operation not permitted/);
      }));
  });

  describe('defaultAction and defaultErrnoRet', () => {
    const allowListWithout = (...drop: string[]): SeccompSyscall[] =>
      defaultSeccompProfile().syscalls!.map((s) => (s.action === 'SCMP_ACT_ALLOW' ? { ...s, names: s.names.filter((n) => !drop.includes(n)) } : s));

    it('defaultErrnoRet sets the errno of the default action', () =>
      withLeakCheck(async () => {
        const seccomp: Seccomp = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: ENOSYS, syscalls: allowListWithout('mkdir', 'mkdirat') };
        const r = await runUnder(seccomp, ['/bin/sh', '-c', 'mkdir /tmp/d; echo mkdir=$?']);
        expect(r.stdout).toMatch(/^mkdir=1$/m);
        expect(r.stderr).toMatch(/Function not implemented/);
      }));

    it('defaultAction SCMP_ACT_KILL_PROCESS kills on any unlisted call', () =>
      withLeakCheck(async () => {
        const seccomp: Seccomp = { defaultAction: 'SCMP_ACT_KILL_PROCESS', syscalls: allowListWithout('mkdir', 'mkdirat') };
        const ok = await runUnder(seccomp, vktest('echo', 'fine'));
        expect(ok.stdout).toBe('fine\n');
        expectCode(ok, 0);
        const m = await runUnder(seccomp, ['/bin/mkdir', '/tmp/d']);
        expectCode(m, SIGSYS_EXIT);
      }));

    it('errnoRet/defaultErrnoRet with an action other than ERRNO/TRACE is refused (runc 1.1: ignored)', () =>
      withLeakCheck(async () => {
        const bad: Seccomp[] = [
          { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 5, syscalls: [mkdirRule('SCMP_ACT_ERRNO')] },
          allowAll(mkdirRule('SCMP_ACT_KILL', 5)),
        ];
        for (const seccomp of bad) {
          if (isRunc) {
            const r = await runUnder(seccomp, vktest('echo', 'ran'));
            expect(r.stdout).toBe('ran\n');
          } else {
            await expectCreateFails(seccomp, /linux\.seccomp\.(defaultErrnoRet|syscalls\[0\]\.errnoRet): only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE/);
          }
        }
      }));
  });

  describe('argument operators (tgkill signal argument, ERRNO 38)', () => {
    const SIGNALS = [10, 12, 14, 15];
    const cases: [op: string, value: number, valueTwo: number | undefined, blocked: number[]][] = [
      ['SCMP_CMP_EQ', 12, undefined, [12]],
      ['SCMP_CMP_NE', 12, undefined, [10, 14, 15]],
      ['SCMP_CMP_LT', 12, undefined, [10]],
      ['SCMP_CMP_LE', 12, undefined, [10, 12]],
      ['SCMP_CMP_GT', 12, undefined, [14, 15]],
      ['SCMP_CMP_GE', 12, undefined, [12, 14, 15]],
      // (sig & 3) == 2: 10 and 14, not 12 (0) or 15 (3).
      ['SCMP_CMP_MASKED_EQ', 3, 2, [10, 14]],
    ];
    it.each(cases)('%s %d (valueTwo %p) blocks signals %p', (op, value, valueTwo, blocked) =>
      withLeakCheck(async () => {
        const rule: SeccompSyscall = {
          names: ['tgkill'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: ENOSYS,
          args: [{ index: 2, value, op, ...(valueTwo !== undefined ? { valueTwo } : {}) }],
        };
        const r = await runUnder(allowAll(rule), killProbe(SIGNALS));
        expectCode(r, 0);
        const want = Object.fromEntries(SIGNALS.map((s) => [s, blocked.includes(s) ? 'blocked' : 'delivered']));
        expect(killOutcomes(r, SIGNALS)).toEqual(want);
      }));

    it('conditions on different arguments of one rule are ANDed (openat flags and mode)', () =>
      withLeakCheck(async () => {
        // glibc passes mode 0 to openat unless O_CREAT/O_TMPFILE: the first rule matches
        // `w` (flags and mode), the second matches `rw` by flags but not by mode.
        const rule = (flags: number, mode: number, errnoRet: number): SeccompSyscall => ({
          names: ['openat'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet,
          args: [
            { index: 2, value: flags, op: 'SCMP_CMP_EQ' },
            { index: 3, value: mode, op: 'SCMP_CMP_EQ' },
          ],
        });
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: withSeccomp(allowAll(rule(O_W, 0, ENOSYS), rule(O_RW, 0o644, EPERM))) });
        await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
        const open = async (mode: string) => parseErrno((await runRuntimeOk(['exec', b.id, ...vktest('tryopen', '/dev/null', mode)])).stdout).errno;
        expect(await open('w')).toBe(ENOSYS);
        expect(await open('rw')).toBe(0);
        expect(await open('r')).toBe(0);
        await runRuntimeOk(['delete', '--force', b.id]);
      }));
  });

  describe('architectures', () => {
    it('x86_64 with its compat ABIs: the rules apply', () =>
      withLeakCheck(async () => {
        const seccomp: Seccomp = { ...allowAll(mkdirRule('SCMP_ACT_ERRNO', ENOSYS)), architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'] };
        const r = await runUnder(seccomp, ['/bin/mkdir', '/tmp/d']);
        expectCode(r, 1);
        expect(r.stderr).toMatch(/Function not implemented/);
      }));

    it('only a foreign architecture listed: the native one is still filtered (libseccomp adds it)', () =>
      withLeakCheck(async () => {
        const seccomp: Seccomp = { ...allowAll(mkdirRule('SCMP_ACT_ERRNO', ENOSYS)), architectures: ['SCMP_ARCH_X86'] };
        const r = await runUnder(seccomp, ['/bin/mkdir', '/tmp/d']);
        expectCode(r, 1);
        expect(r.stderr).toMatch(/Function not implemented/);
      }));

    it('an unknown architecture is refused, nothing is left', () =>
      withLeakCheck(async () => {
        await expectCreateFails(
          { ...allowAll(mkdirRule('SCMP_ACT_ERRNO')), architectures: ['SCMP_ARCH_NOPE'] },
          isRunc ? /SCMP_ARCH_NOPE is not a valid arch/ : /linux\.seccomp\.architectures\[0\].*SCMP_ARCH_NOPE/,
        );
      }));
  });

  describe('flags', () => {
    const openatW = (errnoRet = ENOSYS): SeccompSyscall => ({
      names: ['openat'],
      action: 'SCMP_ACT_ERRNO',
      errnoRet,
      args: [{ index: 2, value: O_W, op: 'SCMP_CMP_EQ' }],
    });
    // tgkill(.., 12) is LOGged: proves the kernel log took records at that moment.
    const logTgkill12: SeccompSyscall = { names: ['tgkill'], action: 'SCMP_ACT_LOG', args: [{ index: 2, value: 12, op: 'SCMP_CMP_EQ' }] };

    /** Runs an ERRNO'd openat as commA, then a LOGged tgkill as commB; returns both records. */
    async function errnoThenLog(flags: string[]): Promise<{ errno?: string; log: string }> {
      for (let i = 0; i < 3; i++) {
        const a = uniqueComm();
        const c = uniqueComm();
        const b = await makeBundle({
          args: ['/bin/sh', '-c', `/${a} tryopen /dev/null w; /${c} kill 12; true`],
          mutate: withSeccomp({ ...allowAll(openatW(), logTgkill12), flags }),
        });
        linkPayload(b, a);
        linkPayload(b, c);
        const r = await runBundle(b);
        expectCode(r, 0);
        expect(r.stdout).toMatch(/^errno=38$/m);
        const log = await auditRecord(c);
        if (log) return { errno: await auditRecord(a, 200), log };
      }
      throw new Error('the kernel logged no SCMP_ACT_LOG record in 3 attempts');
    }

    it('SECCOMP_FILTER_FLAG_LOG: an ERRNO action is logged, and without the flag it is not', () =>
      withLeakCheck(async () => {
        if (isRunc) {
          await expectCreateFails({ ...allowAll(openatW()), flags: ['SECCOMP_FILTER_FLAG_LOG'] }, RUNC_NO_FLAGS);
          return;
        }
        const withFlag = await errnoThenLog(['SECCOMP_FILTER_FLAG_LOG']);
        expect(withFlag.errno).toBeDefined();
        expect(field(withFlag.errno!, 'syscall')).toBe(String(NR_OPENAT));
        // The record carries the action without its data (the errno).
        expect(Number(field(withFlag.errno!, 'code'))).toBe(RET.ERRNO);
        const without = await errnoThenLog([]);
        expect(without.errno).toBeUndefined();
      }));

    it('SECCOMP_FILTER_FLAG_SPEC_ALLOW: accepted; speculative store bypass is left as the host has it', () =>
      withLeakCheck(async () => {
        const seccomp = (flags: string[]): Seccomp => ({ ...allowAll(openatW()), flags });
        if (isRunc) {
          await expectCreateFails(seccomp(['SECCOMP_FILTER_FLAG_SPEC_ALLOW']), RUNC_NO_FLAGS);
          return;
        }
        const ssb = (status: string) => /^Speculation_Store_Bypass:\s*(.*)$/m.exec(status)?.[1];
        const args = ['/bin/sh', '-c', '/vktest tryopen /dev/null w; /vktest cat /proc/self/status'];
        const allowed = await runUnder(seccomp(['SECCOMP_FILTER_FLAG_SPEC_ALLOW']), args);
        expectCode(allowed, 0);
        expect(allowed.stdout).toMatch(/^errno=38$/m); // the filter is in force
        const none = await runUnder(seccomp([]), args);
        const hostMode = fs.readFileSync('/sys/devices/system/cpu/vulnerabilities/spec_store_bypass', 'utf8');
        if (/seccomp/i.test(hostMode)) {
          // The kernel mitigates for seccomp'ed tasks unless the filter says SPEC_ALLOW.
          expect(ssb(none.stdout)).toMatch(/force mitigated/);
          expect(ssb(allowed.stdout)).not.toMatch(/force mitigated/);
        } else {
          // No seccomp-driven mitigation on this host: the flag changes nothing visible.
          expect(ssb(allowed.stdout)).toBe(ssb(none.stdout));
        }
      }));

    it('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV without a notify rule: dropped with a warning (runc 1.1: refused)', () =>
      withLeakCheck(async () => {
        const seccomp: Seccomp = { ...allowAll(openatW()), flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] };
        if (isRunc) {
          await expectCreateFails(seccomp, RUNC_NO_FLAGS);
          return;
        }
        const r = await runUnder(seccomp, vktest('tryopen', '/dev/null', 'w'));
        expectCode(r, 0);
        expect(r.stderr).toMatch(/linux\.seccomp\.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored/);
        expect(parseErrno(r.stdout).errno).toBe(ENOSYS);
      }));

    it('an unknown flag is refused, nothing is left', () =>
      withLeakCheck(async () => {
        await expectCreateFails(
          { ...allowAll(openatW()), flags: ['SECCOMP_FILTER_FLAG_NOPE'] },
          isRunc ? RUNC_NO_FLAGS : /linux\.seccomp\.flags\[0\].*SECCOMP_FILTER_FLAG_NOPE/,
        );
      }));

    it('flags [] (none) and flags unset both load the filter', () =>
      withLeakCheck(async () => {
        for (const flags of [[], undefined]) {
          const r = await runUnder({ ...allowAll(openatW()), ...(flags ? { flags } : {}) }, vktest('tryopen', '/dev/null', 'w'));
          expect(parseErrno(r.stdout).errno).toBe(ENOSYS);
        }
      }));
  });

  describe('exec', () => {
    it("the container's filter also applies to exec'd processes", () =>
      withLeakCheck(async () => {
        const seccomp = allowAll(mkdirRule('SCMP_ACT_ERRNO', ENOSYS), {
          names: ['openat'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: ENOSYS,
          args: [{ index: 2, value: O_W, op: 'SCMP_CMP_EQ' }],
        });
        const b = await makeBundle({ args: vktest('sleep', 60), mutate: withSeccomp(seccomp) });
        await runRuntimeOk(['run', '--detach', '--bundle', b.dir, b.id]);
        expect(parseErrno((await runRuntimeOk(['exec', b.id, ...vktest('tryopen', '/dev/null', 'w')])).stdout).errno).toBe(ENOSYS);
        expect(parseErrno((await runRuntimeOk(['exec', b.id, ...vktest('tryopen', '/dev/null', 'r')])).stdout).errno).toBe(0);
        const m = await runRuntime(['exec', b.id, '/bin/mkdir', '/tmp/d']);
        expectCode(m, 1);
        expect(m.stderr).toMatch(/Function not implemented/);
        expect(parseKeyValues((await runRuntimeOk(['exec', b.id, ...vktest('caps')])).stdout).Seccomp).toBe('2');
        // A shell and its children inherit it.
        const sh = await runRuntime(['exec', b.id, '/bin/sh', '-c', 'mkdir /tmp/e 2>&1; /vktest tryopen /dev/null w']);
        expect(sh.stdout).toMatch(/Function not implemented/);
        expect(sh.stdout).toMatch(/^errno=38$/m);
        await runRuntimeOk(['delete', '--force', b.id]);
        expect(fs.existsSync(path.join(b.rootfs, 'tmp', 'd'))).toBe(false);
      }));
  });

  describe('the default profile', () => {
    const profileFor = (s: Spec): Seccomp => defaultSeccompProfile({ capabilities: s.process!.capabilities!.bounding });

    it('normal workloads run under it', () =>
      withLeakCheck(async () => {
        const r = await runUnder(
          undefined,
          ['/bin/sh', '-c', 'set -e; ls / >/dev/null; mkdir /tmp/d; echo data > /tmp/d/f; cat /tmp/d/f; rm -r /tmp/d; /vktest forkbomb 3 | head -1; /vktest echo done'],
          (s) => (s.linux!.seccomp = profileFor(s)),
        );
        expect(r.stdout).toBe('data\nforked=3\ndone\n');
        expectCode(r, 0);
        const caps = await runUnder(undefined, vktest('caps'), (s) => (s.linux!.seccomp = profileFor(s)));
        expect(parseKeyValues(caps.stdout).Seccomp).toBe('2');
      }));

    it('blocks `unshare -U` (user namespaces) with EPERM, which works without a filter', () =>
      withLeakCheck(async () => {
        const args = ['/bin/sh', '-c', 'unshare -U /bin/true; echo unshare=$?'];
        const blocked = await runUnder(undefined, args, (s) => (s.linux!.seccomp = profileFor(s)));
        expect(blocked.stdout).toMatch(/^unshare=1$/m);
        expect(blocked.stderr).toMatch(/unshare\(0x10000000\): Operation not permitted/);
        const control = await runUnder(undefined, args);
        expect(control.stdout).toMatch(/^unshare=0$/m);
      }));

    it('with CAP_SYS_ADMIN other namespaces may be created, a user namespace still may not', () =>
      withLeakCheck(async () => {
        const addSysAdmin = (s: Spec): void => {
          const c = s.process!.capabilities!;
          for (const k of ['bounding', 'effective', 'permitted'] as const) c[k] = [...(c[k] ?? []), 'CAP_SYS_ADMIN'];
          s.linux!.seccomp = profileFor(s);
        };
        const r = await runUnder(undefined, ['/bin/sh', '-c', 'unshare -u /bin/true; echo uts=$?; unshare -U /bin/true; echo user=$?'], addSysAdmin);
        expect(r.stdout).toMatch(/^uts=0$/m);
        expect(r.stdout).toMatch(/^user=1$/m);
        expect(r.stderr).toMatch(/unshare\(0x10000000\): Operation not permitted/);
      }));
  });
});
