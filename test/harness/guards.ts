// Environment guards for integration tests. A guard returns true when its requirement is
// met. When it is not: under CI=true it THROWS, so the test file fails (CI never skips
// silently); elsewhere it prints why once and returns false, so the caller can skip:
//
//   const ok = requireRoot() && requireFixtures() && requireRuntime();
//   describeIf(ok)('cgroups', () => { ... });

import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { defaultFixturesDir, OCI_TAR_NAME, repoRoot, ROOTFS_NAME } from '../fixtures/image';
import { RuntimeName, runtimeName, vkernelCli } from './runtime';

export function inCI(): boolean {
  return process.env.CI === 'true';
}

export class RequirementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequirementError';
  }
}

const warned = new Set<string>();

/** The generic guard: `ok`, or fail under CI / warn-and-false elsewhere. */
export function requirement(ok: boolean, what: string): boolean {
  if (ok) return true;
  if (inCI()) throw new RequirementError(`requirement not met (CI=true, so this fails instead of skipping): ${what}`);
  if (!warned.has(what)) {
    warned.add(what);
    process.stderr.write(`[vkernel tests] skipping: ${what}\n`);
  }
  return false;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function requireRoot(): boolean {
  return requirement(isRoot(), 'must run as root');
}

/** Is `name` an executable on PATH (or an absolute path that is executable)? */
export function hasBinary(name: string): boolean {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(':').filter(Boolean).map((d) => path.join(d, name));
  return candidates.some((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  });
}

export function requireBinary(name: string): boolean {
  return requirement(hasBinary(name), `${name} is not installed`);
}

/** build/fixtures (rootfs with /vktest, and the OCI tarball) exists: `make native fixtures`. */
export function requireFixtures(): boolean {
  const dir = defaultFixturesDir();
  const ok = fs.existsSync(path.join(dir, ROOTFS_NAME, 'vktest')) && fs.existsSync(path.join(dir, OCI_TAR_NAME));
  return requirement(ok, `test fixtures missing in ${dir} (run \`make native fixtures\`)`);
}

/** The runtime under test (default env RUNTIME) can be run: binary installed, or vkernel built. */
export function requireRuntime(runtime: RuntimeName = runtimeName()): boolean {
  if (runtime === 'vkernel') {
    const cli = vkernelCli();
    const vkinit = path.join(repoRoot(), 'build', 'vkinit');
    return (
      requirement(fs.existsSync(cli), `${cli} missing (run \`make ts\`)`) &&
      requirement(fs.existsSync(vkinit), `${vkinit} missing (run \`make native\`)`)
    );
  }
  return requireBinary(runtime);
}

/** A cgroup v1 hierarchy for `controller` is mounted at /sys/fs/cgroup/<controller>. */
export function hasCgroupV1(controller: string): boolean {
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return mountinfo.split('\n').some((line) => {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) return false;
    const [fstype, , superOpts] = post.split(' ');
    return fstype === 'cgroup' && (superOpts ?? '').split(',').includes(controller);
  });
}

export function requireCgroupV1(controller = 'memory'): boolean {
  return requirement(hasCgroupV1(controller), `cgroup v1 ${controller} controller not mounted`);
}

/** Runs a command and reports whether it exited 0 (for ad-hoc guards). */
export function commandSucceeds(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** `describe` when ok, else `describe.skip` (guards already failed under CI). */
export function describeIf(ok: boolean): jest.Describe {
  return ok ? describe : describe.skip;
}

/** `it` when ok, else `it.skip`. */
export function itIf(ok: boolean): jest.It {
  return ok ? it : it.skip;
}
