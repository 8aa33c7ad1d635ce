// Temporary OCI bundles for integration tests: a private copy of the fixtures rootfs
// plus a config.json from the base spec.

import { execFile } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { promisify } from 'util';
import type { Spec } from '../../runtime/spec/types';
import { defaultFixturesDir, ROOTFS_NAME } from '../fixtures/image';
import { baseSpec } from './base-spec';
import { runRuntime, RuntimeName } from './runtime';

const execFileP = promisify(execFile);

export interface BundleOptions {
  /** process.args (default ["/vktest", "echo", "hi"]). */
  args?: string[];
  /** Applied to the spec after the other options, before config.json is written. */
  mutate?: (spec: Spec) => void;
  /** root.readonly. Default false: the rootfs is a private copy, so tests may write to it. */
  readonlyRootfs?: boolean;
  /** Container id (default vkt-<random>). */
  id?: string;
  /** Rootfs to copy (default <repo>/build/fixtures/rootfs). */
  rootfsSource?: string;
  /** Runtime used by cleanup() for `delete --force` (default env RUNTIME). */
  runtime?: RuntimeName;
  /** State root used by cleanup() (default the private per-process root). */
  root?: string;
}

export interface Bundle {
  /** Absolute bundle dir (holds config.json and rootfs/). */
  dir: string;
  /** The container id to use with this bundle. */
  id: string;
  /** Absolute rootfs path. */
  rootfs: string;
  /** The spec; mutate it and call writeSpec() to change config.json. */
  spec: Spec;
  /** (Re)writes config.json from `spec`. */
  writeSpec(): Promise<void>;
  /**
   * Best-effort `delete --force <id>`, detaches any mounts under the bundle left in the
   * host mount namespace, then removes the dir. Refuses (throws) to delete across a
   * mount it could not detach. Idempotent.
   */
  cleanup(): Promise<void>;
}

/** A fresh unique container id: vkt-<12 hex>. */
export function uniqueId(prefix = 'vkt'): string {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

/** Every bundle made in this process that is not cleaned up yet (for withLeakCheck). */
export const liveBundles = new Set<Bundle>();
type BundleListener = (b: Bundle) => void;
const listeners = new Set<BundleListener>();

/** Calls fn for every bundle created from now until the returned function is called. */
export function onBundleCreated(fn: BundleListener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function fixturesRootfs(): string {
  return path.join(defaultFixturesDir(), ROOTFS_NAME);
}

export async function makeBundle(opts: BundleOptions = {}): Promise<Bundle> {
  const source = opts.rootfsSource ?? fixturesRootfs();
  if (!fs.existsSync(path.join(source, 'vktest'))) {
    throw new Error(`test rootfs ${source} is missing or has no /vktest: run \`make native fixtures\``);
  }
  const id = opts.id ?? uniqueId();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), `${id}.bundle-`));
  await fs.promises.chmod(dir, 0o755);
  const rootfs = path.join(dir, 'rootfs');
  try {
    // cp -a keeps owners, modes (1777 /tmp), symlinks and mtimes; fast for ~3 MB.
    await execFileP('cp', ['-a', '--', source, rootfs]);
  } catch (e) {
    await fs.promises.rm(dir, { recursive: true, force: true });
    throw e;
  }

  const spec = baseSpec();
  spec.root = { path: 'rootfs', readonly: opts.readonlyRootfs ?? false };
  if (opts.args) spec.process!.args = [...opts.args];
  opts.mutate?.(spec);

  let cleaned = false;
  const bundle: Bundle = {
    dir,
    id,
    rootfs,
    spec,
    async writeSpec() {
      const tmp = path.join(dir, '.config.json.tmp');
      await fs.promises.writeFile(tmp, JSON.stringify(bundle.spec, null, 2) + '\n');
      await fs.promises.rename(tmp, path.join(dir, 'config.json'));
    },
    async cleanup() {
      if (cleaned) return;
      await runRuntime(['delete', '--force', id], { runtime: opts.runtime, root: opts.root, timeoutMs: 15_000 }).catch(() => undefined);
      await removeTree(dir);
      cleaned = true;
      liveBundles.delete(bundle);
    },
  };
  await bundle.writeSpec();
  liveBundles.add(bundle);
  for (const fn of listeners) fn(bundle);
  return bundle;
}

/** Mount points at or under `dir` in this mount namespace, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : dir + '/';
  const found: string[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const mountPoint = unescapeMountinfo(mp);
    if (mountPoint === dir || mountPoint.startsWith(prefix)) found.push(mountPoint);
  }
  return found.sort((a, b) => b.length - a.length);
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
export function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * rm -rf that never crosses a mount: mounts under `dir` are lazily detached first, and if
 * any remains the removal is refused (a leaked bind mount must not cost host files).
 */
export async function removeTree(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  for (const mp of mountsUnder(dir)) {
    await execFileP('umount', ['-l', '--', mp]).catch(() => undefined);
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`refusing to remove ${dir}: still mounted: ${left.join(', ')}`);
  await execFileP('rm', ['-rf', '--one-file-system', '--', dir]);
}
