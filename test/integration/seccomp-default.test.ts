// The Docker-like default profile (runtime/seccomp/default-profile.ts) in real containers:
// the kernel keyring (keyctl, add_key, request_key) and new user namespaces
// (unshare(CLONE_NEWUSER)) answer EPERM, observed with raw syscalls from the payload
// (`vktest syscall NR ARGS...` prints ret=, errno=, errname=), and the same calls without
// the profile do not fail that way (issue 3 acceptance).
import type { Spec } from '../../runtime/spec/types';
import { defaultSeccompProfile } from '../../runtime/seccomp/default-profile';
import {
  cleanupRuntimeRoot,
  describeIf,
  makeBundle,
  parseKeyValues,
  requireFixtures,
  requirement,
  requireRoot,
  requireRuntime,
  runBundle,
  withLeakCheck,
  type RunResult,
} from '../harness';

const ok =
  requireRoot() &&
  requireFixtures() &&
  requireRuntime() &&
  requirement(process.arch === 'x64', 'the raw syscall numbers below are x86_64');

/** x86_64 syscall numbers, and the arguments of each probe. */
const PROBES: Record<string, string[]> = {
  // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create=1)
  keyctl: ['250', '0', '-3', '1'],
  // add_key("user", "vkt", "x", 1, KEY_SPEC_PROCESS_KEYRING)
  add_key: ['248', 's:user', 's:vkt', 's:x', '1', '-2'],
  // request_key("user", "vkt-missing", NULL, 0): ENOKEY when allowed
  request_key: ['249', 's:user', 's:vkt-missing', '0', '0'],
  // unshare(CLONE_NEWUSER)
  unshare_user: ['272', '0x10000000'],
};
const EPERM = 1;

interface Outcome {
  ret: number;
  errno: number;
  errname: string;
}

/** Runs every probe in one container (a shell loop) and parses the per-probe blocks. */
async function probe(mutate?: (s: Spec) => void): Promise<{ r: RunResult; out: Record<string, Outcome> }> {
  const script = Object.entries(PROBES)
    .map(([name, args]) => `echo '== ${name}'; /vktest syscall ${args.join(' ')}`)
    .join('; ');
  const b = await makeBundle({ args: ['/bin/sh', '-c', script], mutate });
  const r = await runBundle(b);
  const out: Record<string, Outcome> = {};
  for (const block of r.stdout.split(/^== /m).slice(1)) {
    const name = block.slice(0, block.indexOf('\n'));
    const kv = parseKeyValues(block);
    out[name] = { ret: Number(kv.ret), errno: Number(kv.errno), errname: kv.errname ?? '' };
  }
  if (r.code !== 0 || Object.keys(out).length !== Object.keys(PROBES).length) {
    throw new Error(`probe run failed (exit ${r.code})\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return { r, out };
}

const withDefaultProfile = (s: Spec): void => {
  s.linux!.seccomp = defaultSeccompProfile({ capabilities: s.process!.capabilities!.bounding });
};

describeIf(ok)('the default seccomp profile', () => {
  jest.setTimeout(60_000);
  afterAll(() => {
    cleanupRuntimeRoot();
  });

  it('refuses keyctl, add_key, request_key and unshare(CLONE_NEWUSER) with EPERM', () =>
    withLeakCheck(async () => {
      const { out } = await probe(withDefaultProfile);
      for (const name of Object.keys(PROBES)) {
        expect({ name, ...out[name] }).toEqual({ name, ret: -1, errno: EPERM, errname: 'EPERM' });
      }
    }));

  it('still refuses unshare(CLONE_NEWUSER) and the keyring with CAP_SYS_ADMIN', () =>
    withLeakCheck(async () => {
      const { out } = await probe((s) => {
        const c = s.process!.capabilities!;
        for (const k of ['bounding', 'effective', 'permitted'] as const) c[k] = [...(c[k] ?? []), 'CAP_SYS_ADMIN'];
        withDefaultProfile(s);
      });
      expect(out.unshare_user).toMatchObject({ ret: -1, errname: 'EPERM' });
      expect(out.keyctl).toMatchObject({ ret: -1, errname: 'EPERM' });
      expect(out.add_key).toMatchObject({ ret: -1, errname: 'EPERM' });
    }));

  it('without a profile the same calls do not fail with EPERM', () =>
    withLeakCheck(async () => {
      const { out } = await probe();
      expect(out.keyctl.errname).toBe('OK');
      expect(out.keyctl.ret).toBeGreaterThan(0); // a keyring serial number
      expect(out.add_key.errname).toBe('OK');
      expect(out.add_key.ret).toBeGreaterThan(0); // a key serial number
      expect(out.request_key.errname).toBe('ENOKEY');
      expect(out.unshare_user).toEqual({ ret: 0, errno: 0, errname: 'OK' });
    }));
});
