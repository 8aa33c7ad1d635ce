// config.json validation: everything Linux runc 1.1 checks (and a little more, where
// runc would only fail later inside the container), with one error per problem that
// names the JSON path and the offending value. Validation never changes the document:
// the returned Spec is the input, now known to have the right shape.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InvalidArgumentError } from '../errors';
import { capabilityNumber } from './capabilities';
import { MS_BIND, MS_REMOUNT, PROPAGATION, parseMountOptions } from './mount-options';
import { NAMESPACES, isNamespaceType } from './namespaces';
import { rlimitNumber } from './rlimits';
import type { IdMapping, NamespaceType, Process, Spec } from './types';

type Obj = Record<string, unknown>;

const UINT32_MAX = 0xffffffff;
/** (uid_t)-1 means "leave unchanged" to setresuid(2): not a usable id. */
const ID_MAX = UINT32_MAX - 1;
const NSFS_MAGIC = 0x6e736673;
const PROC_SUPER_MAGIC = 0x9fa0;
/** The kernel accepts at most this many lines in uid_map / gid_map. */
const MAX_ID_MAP_LINES = 340;
const HOST_NAME_MAX = 64;

// ---------------------------------------------------------------------------------------
// error helpers

function show(value: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    s = undefined;
  }
  if (s === undefined) s = String(value);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

/** `field: why (got value)`: the one error shape of this module. */
function bad(field: string, value: unknown, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${why} (got ${show(value)})`, field);
}

/** `field: why`, for problems that have no single offending value. */
function problem(field: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${why}`, field);
}

function missing(field: string): InvalidArgumentError {
  return problem(field, 'is required');
}

const at = (field: string, i: number): string => `${field}[${i}]`;
const key = (field: string, k: string): string => `${field}[${JSON.stringify(k)}]`;
const dot = (field: string, k: string): string => (field ? `${field}.${k}` : k);

// ---------------------------------------------------------------------------------------
// shape helpers (null counts as absent, as with Go's encoding/json)

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function present(o: Obj, k: string): boolean {
  return o[k] !== undefined && o[k] !== null;
}

function expectObj(v: unknown, field: string): Obj {
  if (!isObj(v)) throw bad(field, v, 'must be an object');
  return v;
}

function expectString(v: unknown, field: string): string {
  if (typeof v !== 'string') throw bad(field, v, 'must be a string');
  if (v.includes('\0')) throw bad(field, v, 'must not contain a NUL byte');
  return v;
}

function expectBool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw bad(field, v, 'must be a boolean');
  return v;
}

function expectInt(v: unknown, field: string, min: number, max: number): number {
  const range = `must be an integer from ${bound(min)} to ${bound(max)}`;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(field, v, range);
  if (v < min || v > max) throw bad(field, v, range);
  return v;
}

/** A range bound as written in messages: 2**64 (a double, printed 18446744073709552000) is the u64 maximum. */
function bound(n: number): string {
  return n >= 2 ** 64 ? '18446744073709551615' : String(n);
}

function expectAnyInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw bad(field, v, 'must be an integer');
  return v;
}

function expectArray(v: unknown, field: string, what: string): unknown[] {
  if (!Array.isArray(v)) throw bad(field, v, `must be an array of ${what}`);
  return v;
}

function expectStringArray(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) {
    if (Array.isArray(v)) {
      const i = v.findIndex((e) => typeof e !== 'string');
      throw bad(at(field, i), v[i], 'must be a string');
    }
    throw bad(field, v, 'must be an array of strings');
  }
  v.forEach((s: string, i) => {
    if (s.includes('\0')) throw bad(at(field, i), s, 'must not contain a NUL byte');
  });
  return v as string[];
}

function expectStringMap(v: unknown, field: string): Record<string, string> {
  const o = expectObj(v, field);
  for (const [k, val] of Object.entries(o)) {
    if (typeof val !== 'string') throw bad(key(field, k), val, 'must be a string');
  }
  return o as Record<string, string>;
}

function opt<T>(o: Obj, k: string, field: string, check: (v: unknown, f: string) => T): T | undefined {
  return present(o, k) ? check(o[k], dot(field, k)) : undefined;
}

function req<T>(o: Obj, k: string, field: string, check: (v: unknown, f: string) => T): T {
  if (!present(o, k)) throw missing(dot(field, k));
  return check(o[k], dot(field, k));
}

function rejectPresent(o: Obj, k: string, field: string, why: string): void {
  if (present(o, k)) throw bad(dot(field, k), o[k], why);
}

// ---------------------------------------------------------------------------------------
// paths

/**
 * Cleans an absolute container path lexically ("/a/./b//c/../d" → "/a/b/d"). Returns
 * undefined when ".." would climb above "/" (runc clamps those silently; vkernel refuses
 * them because they are always a mistake or an attack).
 */
export function cleanContainerPath(p: string): string | undefined {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}

function expectContainerPath(v: unknown, field: string, what = 'path'): string {
  const p = expectString(v, field);
  if (p === '') throw bad(field, p, `${what} must not be empty`);
  if (!p.startsWith('/')) throw bad(field, p, `${what} must be absolute`);
  const clean = cleanContainerPath(p);
  if (clean === undefined) throw bad(field, p, `${what} escapes the container root through ".."`);
  return clean;
}

function statOrThrow(p: string, field: string, value: unknown, what: string): fs.Stats {
  try {
    return fs.statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw bad(field, value, `${what} does not exist`);
    throw bad(field, value, `${what} cannot be accessed: ${code ?? (err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------
// container id

/**
 * runc's id rule: one or more of [A-Za-z0-9_+.-], not "." or "..", at most 1024 bytes.
 */
export function validateContainerId(id: unknown): asserts id is string {
  if (typeof id !== 'string') throw bad('id', id, 'container id must be a string');
  if (id === '') throw new InvalidArgumentError('container id cannot be empty', 'id');
  if (!/^[\w+.-]+$/.test(id) || id === '.' || id === '..') {
    throw new InvalidArgumentError(`invalid container ID format: ${show(id)}`, 'id');
  }
  if (id.length > 1024) {
    throw new InvalidArgumentError(`invalid container ID format: id is ${id.length} characters long, the limit is 1024`, 'id');
  }
}

// ---------------------------------------------------------------------------------------
// process

function validateUser(v: unknown, field: string): void {
  const u = expectObj(v, field);
  req(u, 'uid', field, (x, f) => expectInt(x, f, 0, ID_MAX));
  req(u, 'gid', field, (x, f) => expectInt(x, f, 0, ID_MAX));
  opt(u, 'umask', field, (x, f) => expectInt(x, f, 0, 0o777));
  opt(u, 'additionalGids', field, (x, f) => {
    const a = expectArray(x, f, 'integers');
    a.forEach((g, i) => expectInt(g, at(f, i), 0, ID_MAX));
    return a;
  });
  opt(u, 'username', field, expectString);
}

function validateEnvList(v: unknown, field: string): string[] {
  const env = expectStringArray(v, field);
  env.forEach((kv, i) => {
    const eq = kv.indexOf('=');
    if (eq < 0) throw bad(at(field, i), kv, 'must have the form KEY=VALUE');
    if (eq === 0) throw bad(at(field, i), kv, 'variable name must not be empty');
  });
  return env;
}

function validateCapabilities(v: unknown, field: string): void {
  const caps = expectObj(v, field);
  for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
    opt(caps, set, field, (x, f) => {
      const names = expectStringArray(x, f);
      names.forEach((name, i) => {
        if (capabilityNumber(name) === undefined) {
          const hint = capabilityNumber(name.toUpperCase()) !== undefined || capabilityNumber('CAP_' + name.toUpperCase()) !== undefined
            ? ` (names are upper-case with the CAP_ prefix, e.g. ${JSON.stringify(name.toUpperCase().startsWith('CAP_') ? name.toUpperCase() : 'CAP_' + name.toUpperCase())})`
            : '';
          throw bad(at(f, i), name, `unknown capability${hint}`);
        }
      });
      return names;
    });
  }
}

function validateRlimits(v: unknown, field: string): void {
  const list = expectArray(v, field, 'objects');
  const seen = new Map<string, number>();
  list.forEach((raw, i) => {
    const f = at(field, i);
    const r = expectObj(raw, f);
    const type = req(r, 'type', f, expectString);
    if (rlimitNumber(type) === undefined) throw bad(dot(f, 'type'), type, 'unknown rlimit type');
    const prev = seen.get(type);
    if (prev !== undefined) throw bad(dot(f, 'type'), type, `duplicate rlimit, already set by ${at(field, prev)}`);
    seen.set(type, i);
    const limit = (x: unknown, ff: string): number => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 2 ** 64) {
        throw bad(ff, x, 'must be an integer from 0 to 18446744073709551615');
      }
      return x;
    };
    const soft = req(r, 'soft', f, limit);
    const hard = req(r, 'hard', f, limit);
    if (soft > hard) throw bad(f, { soft, hard }, 'soft limit must not exceed the hard limit');
  });
}

function validateHookList(v: unknown, field: string): void {
  const hooks = expectArray(v, field, 'hook objects');
  hooks.forEach((raw, i) => {
    const f = at(field, i);
    const h = expectObj(raw, f);
    const p = req(h, 'path', f, expectString);
    if (!path.isAbsolute(p)) throw bad(dot(f, 'path'), p, 'hook path must be absolute');
    opt(h, 'args', f, expectStringArray);
    opt(h, 'env', f, validateEnvList);
    opt(h, 'timeout', f, (x, ff) => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0) throw bad(ff, x, 'timeout must be a positive integer (seconds)');
      return x;
    });
  });
}

/** Checks a process object; `field` is its JSON path ("process" in config.json). */
function checkProcess(v: unknown, field: string): Process {
  const p = expectObj(v, field);
  opt(p, 'terminal', field, expectBool);
  opt(p, 'consoleSize', field, (x, f) => {
    const cs = expectObj(x, f);
    req(cs, 'height', f, (y, ff) => expectInt(y, ff, 0, 65535));
    req(cs, 'width', f, (y, ff) => expectInt(y, ff, 0, 65535));
    return cs;
  });
  req(p, 'user', field, validateUser);
  const args = req(p, 'args', field, expectStringArray);
  if (args.length === 0) throw bad(dot(field, 'args'), args, 'args must not be empty');
  if (args[0] === '') throw bad(at(dot(field, 'args'), 0), args[0], 'the executable must not be empty');
  opt(p, 'commandLine', field, expectString);
  opt(p, 'env', field, validateEnvList);
  const cwd = req(p, 'cwd', field, expectString);
  if (cwd === '') throw bad(dot(field, 'cwd'), cwd, 'cwd must not be empty');
  if (!cwd.startsWith('/')) throw bad(dot(field, 'cwd'), cwd, 'cwd must be an absolute path');
  opt(p, 'capabilities', field, validateCapabilities);
  opt(p, 'rlimits', field, validateRlimits);
  opt(p, 'noNewPrivileges', field, expectBool);
  opt(p, 'apparmorProfile', field, expectString);
  opt(p, 'selinuxLabel', field, expectString);
  opt(p, 'oomScoreAdj', field, (x, f) => expectInt(x, f, -1000, 1000));
  rejectPresent(p, 'ioPriority', field, 'ioPriority is not supported by vkernel');
  rejectPresent(p, 'scheduler', field, 'scheduler is not supported by vkernel');
  rejectPresent(p, 'execCPUAffinity', field, 'execCPUAffinity is not supported by vkernel');
  return p as unknown as Process;
}

/** Validates a process.json document (`vkernel exec --process`). */
export function validateProcess(raw: unknown, field = 'process'): Process {
  return checkProcess(raw, field);
}

// ---------------------------------------------------------------------------------------
// LSMs. vkinit arms an AppArmor profile or SELinux label for the workload's execve
// (runtime/init/PROTOCOL.md, "Order inside the child"); asking for one on a host without that LSM
// fails here, before anything is created, so confinement is never silently dropped.

export interface HostLsm {
  apparmor: boolean;
  selinux: boolean;
}

export function hostLsm(): HostLsm {
  let apparmor = false;
  try {
    apparmor = fs.readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim() === 'Y';
  } catch {
    apparmor = false;
  }
  const selinux = fs.existsSync('/sys/fs/selinux/enforce');
  return { apparmor, selinux };
}

/** Fails when a process asks for an AppArmor profile or SELinux label this host cannot apply. */
export function checkProcessSecurityModules(proc: Process, field = 'process', lsm: HostLsm = hostLsm()): void {
  if (proc.apparmorProfile && !lsm.apparmor) {
    throw bad(dot(field, 'apparmorProfile'), proc.apparmorProfile, 'apparmor is not enabled on this host');
  }
  if (proc.selinuxLabel && !lsm.selinux) {
    throw bad(dot(field, 'selinuxLabel'), proc.selinuxLabel, 'selinux is not enabled on this host');
  }
}

/**
 * As checkProcessSecurityModules, plus linux.mountLabel: it goes into the mount data as
 * context="<label>" (runc 1.1 adds it whether or not SELinux is enabled, and its first
 * tmpfs mount then fails with EINVAL: refused here instead, before anything is created).
 */
export function checkSecurityModules(spec: Spec, lsm: HostLsm = hostLsm()): void {
  if (spec.process) checkProcessSecurityModules(spec.process, 'process', lsm);
  const label = spec.linux?.mountLabel;
  if (label && !lsm.selinux) throw bad('linux.mountLabel', label, 'selinux is not enabled on this host');
  if (label && /["\n]/.test(label)) throw bad('linux.mountLabel', label, 'must not contain a double quote or a newline');
}

// ---------------------------------------------------------------------------------------
// namespaces and id mappings

function checkNamespacePath(p: string, type: NamespaceType, field: string): void {
  if (p === '') throw bad(field, p, 'namespace path must not be empty (omit it to create a new namespace)');
  if (!path.isAbsolute(p)) throw bad(field, p, 'namespace path must be absolute');
  if (p.includes(',')) throw bad(field, p, 'namespace path must not contain ","');
  statOrThrow(p, field, p, 'namespace path');
  let fsType: number | undefined;
  try {
    fsType = Number(fs.statfsSync(p).type);
  } catch {
    fsType = undefined;
  }
  if (fsType !== undefined && fsType !== NSFS_MAGIC) throw bad(field, p, 'is not a namespace file');
  let link: string | undefined;
  try {
    link = fs.readlinkSync(p);
  } catch {
    link = undefined; // a bind-mounted nsfs file: no type to compare
  }
  const m = link ? /^([a-z_]+):\[\d+\]$/.exec(link) : null;
  if (m) {
    const want = NAMESPACES[type].procName;
    const got = m[1].replace(/_for_children$/, '');
    if (got !== want) throw bad(field, p, `is a namespace of type ${got}, not ${want} (${type})`);
  }
}

function validateIdMappings(v: unknown, field: string): IdMapping[] {
  const list = expectArray(v, field, 'id mappings');
  if (list.length > MAX_ID_MAP_LINES) throw bad(field, list.length, `at most ${MAX_ID_MAP_LINES} mappings are allowed`);
  const maps = list.map((raw, i) => {
    const f = at(field, i);
    const m = expectObj(raw, f);
    const containerID = req(m, 'containerID', f, (x, ff) => expectInt(x, ff, 0, UINT32_MAX));
    const hostID = req(m, 'hostID', f, (x, ff) => expectInt(x, ff, 0, UINT32_MAX));
    const size = req(m, 'size', f, (x, ff) => expectInt(x, ff, 1, UINT32_MAX));
    if (containerID + size > 2 ** 32) throw bad(f, raw, 'containerID + size must not exceed 4294967296');
    if (hostID + size > 2 ** 32) throw bad(f, raw, 'hostID + size must not exceed 4294967296');
    return { containerID, hostID, size };
  });
  for (let j = 1; j < maps.length; j++) {
    for (let i = 0; i < j; i++) {
      const a = maps[i];
      const b = maps[j];
      if (a.containerID < b.containerID + b.size && b.containerID < a.containerID + a.size) {
        throw bad(at(field, j), list[j], `container id range overlaps ${at(field, i)}`);
      }
      if (a.hostID < b.hostID + b.size && b.hostID < a.hostID + a.size) {
        throw bad(at(field, j), list[j], `host id range overlaps ${at(field, i)}`);
      }
    }
  }
  return maps;
}

function isMapped(id: number, maps: readonly IdMapping[]): boolean {
  return maps.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

// ---------------------------------------------------------------------------------------
// sysctl

/** runc's conversion: a key whose first separator is "/" uses "/" between components. */
function sysctlToDots(k: string): string {
  const first = k.search(/[./]/);
  if (first < 0 || k[first] === '.') return k;
  return k.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

/** The path under /proc/sys for a sysctl key ("net.ipv4.ip_forward" → "net/ipv4/ip_forward"). */
export function sysctlKeyToPath(k: string): string {
  return sysctlToDots(k).replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

function validateSysctl(v: unknown, field: string, ns: Map<NamespaceType, string | undefined>): void {
  const map = expectStringMap(v, field);
  for (const k of Object.keys(map)) {
    const f = key(field, k);
    const p = sysctlKeyToPath(k);
    if (k === '' || p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..') || k.includes('\0')) {
      throw bad(f, k, 'is not a valid sysctl name');
    }
    const s = sysctlToDots(k);
    if (IPC_SYSCTLS.has(s) || s.startsWith('fs.mqueue.')) {
      if (!ns.has('ipc')) throw bad(f, map[k], 'is not allowed in the host ipc namespace (add an ipc namespace)');
      continue;
    }
    if (s.startsWith('net.')) {
      const hostNet = !ns.has('network') || (ns.get('network') !== undefined && sameFile(ns.get('network')!, '/proc/self/ns/net'));
      if (hostNet) throw bad(f, map[k], 'is not allowed in the host network namespace (add a new network namespace)');
      continue;
    }
    if (ns.has('uts')) {
      if (s === 'kernel.domainname') continue;
      if (s === 'kernel.hostname') throw bad(f, map[k], 'conflicts with the "hostname" field; set that instead');
    }
    throw bad(f, map[k], 'is not in a separate kernel namespace and cannot be set in a container');
  }
}

// ---------------------------------------------------------------------------------------
// mounts

/** Entries under /proc that may be mount targets (what lxcfs emulates), as runc. */
const PROC_MOUNT_ALLOW = new Set([
  '/proc/cpuinfo',
  '/proc/diskstats',
  '/proc/meminfo',
  '/proc/stat',
  '/proc/swaps',
  '/proc/uptime',
  '/proc/loadavg',
  '/proc/slabinfo',
  '/proc/net/dev',
  '/proc/sys/kernel/ns_last_pid',
]);

function isProcFs(p: string): boolean {
  try {
    return Number(fs.statfsSync(p).type) === PROC_SUPER_MAGIC;
  } catch {
    return false;
  }
}

function validateMount(raw: unknown, field: string, bundle: string): void {
  const m = expectObj(raw, field);
  const dest = req(m, 'destination', field, (x, f) => {
    const d = expectString(x, f);
    if (d === '') throw bad(f, d, 'mount destination must not be empty');
    if (!d.startsWith('/')) throw bad(f, d, 'mount destination must be absolute');
    const clean = cleanContainerPath(d);
    if (clean === undefined) throw bad(f, d, 'mount destination escapes the container root through ".."');
    if (clean === '/') throw bad(f, d, 'cannot mount over the container root (use root.path)');
    return clean;
  });
  const type = opt(m, 'type', field, expectString) ?? '';
  const source = opt(m, 'source', field, expectString) ?? '';
  const options = opt(m, 'options', field, expectStringArray) ?? [];
  if (present(m, 'uidMappings') || present(m, 'gidMappings')) {
    throw bad(dot(field, present(m, 'uidMappings') ? 'uidMappings' : 'gidMappings'), m.uidMappings ?? m.gidMappings,
      'id-mapped mounts are not supported by vkernel');
  }
  const parsed = parseMountOptions(options, dot(field, 'options'));
  const isBind = (parsed.flags & MS_BIND) !== 0;
  const isRemount = (parsed.flags & MS_REMOUNT) !== 0;
  if (isBind) {
    if (source === '') throw missing(dot(field, 'source'));
    const hostSource = path.resolve(bundle, source);
    statOrThrow(hostSource, dot(field, 'source'), source, 'bind mount source');
  } else if (type === 'bind') {
    throw bad(dot(field, 'options'), options, 'a mount of type "bind" needs the "bind" or "rbind" option');
  } else if (type === '' && !isRemount) {
    throw missing(dot(field, 'type'));
  }
  // runc's checkProcMount: nothing but procfs on /proc, and only lxcfs-style files below it.
  if (dest === '/proc') {
    const ok = type === 'proc' || (isBind && isProcFs(path.resolve(bundle, source)));
    if (!ok) throw bad(dot(field, 'destination'), m.destination, 'only a proc filesystem can be mounted on /proc');
  } else if (dest.startsWith('/proc/') && !PROC_MOUNT_ALLOW.has(dest)) {
    throw bad(dot(field, 'destination'), m.destination, 'cannot be mounted because it is inside /proc');
  }
}

// ---------------------------------------------------------------------------------------
// devices

const DEV_MAJOR_MAX = 4095;
const DEV_MINOR_MAX = 0xfffff;

function validateDevices(v: unknown, field: string): void {
  const list = expectArray(v, field, 'device objects');
  const seen = new Map<string, number>();
  list.forEach((raw, i) => {
    const f = at(field, i);
    const d = expectObj(raw, f);
    const type = req(d, 'type', f, expectString);
    if (!['c', 'b', 'u', 'p'].includes(type)) throw bad(dot(f, 'type'), type, 'device type must be one of "c", "b", "u" or "p"');
    const p = req(d, 'path', f, (x, ff) => expectContainerPath(x, ff, 'device path'));
    if (!p.startsWith('/dev/')) throw bad(dot(f, 'path'), d.path, 'device path must be under /dev');
    const prev = seen.get(p);
    if (prev !== undefined) throw bad(dot(f, 'path'), d.path, `duplicate device, already defined by ${at(field, prev)}`);
    seen.set(p, i);
    const major = (x: unknown, ff: string) => expectInt(x, ff, 0, DEV_MAJOR_MAX);
    const minor = (x: unknown, ff: string) => expectInt(x, ff, 0, DEV_MINOR_MAX);
    if (type === 'p') {
      opt(d, 'major', f, major);
      opt(d, 'minor', f, minor);
    } else {
      req(d, 'major', f, major);
      req(d, 'minor', f, minor);
    }
    opt(d, 'fileMode', f, (x, ff) => expectInt(x, ff, 0, 0o177777));
    opt(d, 'uid', f, (x, ff) => expectInt(x, ff, 0, ID_MAX));
    opt(d, 'gid', f, (x, ff) => expectInt(x, ff, 0, ID_MAX));
  });
}

// ---------------------------------------------------------------------------------------
// resources (shape only: the cgroup manager checks values against the host)

function validateResources(v: unknown, field: string): void {
  const r = expectObj(v, field);
  const u16 = (x: unknown, f: string) => expectInt(x, f, 0, 65535);
  const u32 = (x: unknown, f: string) => expectInt(x, f, 0, UINT32_MAX);
  const u64 = (x: unknown, f: string) => expectInt(x, f, 0, 2 ** 64);
  const i64 = expectAnyInt;
  opt(r, 'devices', field, (x, f) => {
    expectArray(x, f, 'device rules').forEach((raw, i) => {
      const ff = at(f, i);
      const d = expectObj(raw, ff);
      req(d, 'allow', ff, expectBool);
      opt(d, 'type', ff, (y, fff) => {
        const t = expectString(y, fff);
        if (!['a', 'b', 'c'].includes(t)) throw bad(fff, t, 'device rule type must be "a", "b" or "c"');
        return t;
      });
      opt(d, 'major', ff, (y, fff) => expectInt(y, fff, -1, DEV_MAJOR_MAX));
      opt(d, 'minor', ff, (y, fff) => expectInt(y, fff, -1, DEV_MINOR_MAX));
      const access = req(d, 'access', ff, expectString);
      if (access === '' || !/^[rwm]+$/.test(access)) throw bad(dot(ff, 'access'), access, 'access must be a non-empty combination of "r", "w" and "m"');
    });
    return x;
  });
  opt(r, 'memory', field, (x, f) => {
    const m = expectObj(x, f);
    for (const k of ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']) opt(m, k, f, i64);
    opt(m, 'swappiness', f, (y, ff) => expectInt(y, ff, 0, 100));
    for (const k of ['disableOOMKiller', 'useHierarchy', 'checkBeforeUpdate']) opt(m, k, f, expectBool);
    return m;
  });
  opt(r, 'cpu', field, (x, f) => {
    const c = expectObj(x, f);
    for (const k of ['shares', 'burst', 'period', 'realtimePeriod']) opt(c, k, f, u64);
    for (const k of ['quota', 'realtimeRuntime', 'idle']) opt(c, k, f, i64);
    for (const k of ['cpus', 'mems']) opt(c, k, f, expectString);
    return c;
  });
  opt(r, 'pids', field, (x, f) => {
    const p = expectObj(x, f);
    req(p, 'limit', f, i64);
    return p;
  });
  opt(r, 'blockIO', field, (x, f) => {
    const b = expectObj(x, f);
    opt(b, 'weight', f, u16);
    opt(b, 'leafWeight', f, u16);
    opt(b, 'weightDevice', f, (y, ff) => {
      expectArray(y, ff, 'objects').forEach((raw, i) => {
        const wd = expectObj(raw, at(ff, i));
        req(wd, 'major', at(ff, i), i64);
        req(wd, 'minor', at(ff, i), i64);
        opt(wd, 'weight', at(ff, i), u16);
        opt(wd, 'leafWeight', at(ff, i), u16);
      });
      return y;
    });
    for (const k of ['throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice']) {
      opt(b, k, f, (y, ff) => {
        expectArray(y, ff, 'objects').forEach((raw, i) => {
          const td = expectObj(raw, at(ff, i));
          req(td, 'major', at(ff, i), i64);
          req(td, 'minor', at(ff, i), i64);
          req(td, 'rate', at(ff, i), u64);
        });
        return y;
      });
    }
    return b;
  });
  opt(r, 'hugepageLimits', field, (x, f) => {
    expectArray(x, f, 'objects').forEach((raw, i) => {
      const h = expectObj(raw, at(f, i));
      req(h, 'pageSize', at(f, i), expectString);
      req(h, 'limit', at(f, i), u64);
    });
    return x;
  });
  opt(r, 'network', field, (x, f) => {
    const n = expectObj(x, f);
    opt(n, 'classID', f, u32);
    opt(n, 'priorities', f, (y, ff) => {
      expectArray(y, ff, 'objects').forEach((raw, i) => {
        const p = expectObj(raw, at(ff, i));
        req(p, 'name', at(ff, i), expectString);
        req(p, 'priority', at(ff, i), u32);
      });
      return y;
    });
    return n;
  });
  opt(r, 'rdma', field, (x, f) => {
    const rd = expectObj(x, f);
    for (const [k, val] of Object.entries(rd)) {
      const e = expectObj(val, key(f, k));
      opt(e, 'hcaHandles', key(f, k), u32);
      opt(e, 'hcaObjects', key(f, k), u32);
    }
    return rd;
  });
  opt(r, 'unified', field, expectStringMap);
}

function validateCgroupsPath(v: unknown, field: string): string {
  const p = expectString(v, field);
  if (p.includes(':')) {
    const parts = p.split(':');
    if (parts.length !== 3) throw bad(field, p, 'a systemd cgroupsPath must have the form "slice:prefix:name"');
    const [slice, , name] = parts;
    if (slice !== '' && (!slice.endsWith('.slice') || slice.includes('/'))) throw bad(field, p, 'the slice part must be empty or a name ending in ".slice"');
    if (name === '' || name.includes('/')) throw bad(field, p, 'the name part of a systemd cgroupsPath must be a non-empty name');
    return p;
  }
  if (p.split('/').includes('..')) throw bad(field, p, 'cgroupsPath must not contain ".." components');
  return p;
}

// ---------------------------------------------------------------------------------------
// seccomp (shape and names: compiling it is someone else's job)

export const SECCOMP_ACTIONS = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
];
export const SECCOMP_ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
];
export const SECCOMP_OPS = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];
/** Spec seccomp flag names → SECCOMP_FILTER_FLAG_* values. */
export const SECCOMP_FLAGS: Readonly<Record<string, number>> = Object.freeze({
  SECCOMP_FILTER_FLAG_TSYNC: 1,
  SECCOMP_FILTER_FLAG_LOG: 2,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: 4,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: 32,
});

function oneOf(list: readonly string[], what: string) {
  return (x: unknown, f: string): string => {
    const s = expectString(x, f);
    if (!list.includes(s)) throw bad(f, s, `unknown seccomp ${what}`);
    return s;
  };
}

function validateSeccomp(v: unknown, field: string): void {
  const s = expectObj(v, field);
  req(s, 'defaultAction', field, oneOf(SECCOMP_ACTIONS, 'action'));
  opt(s, 'defaultErrnoRet', field, (x, f) => expectInt(x, f, 0, UINT32_MAX));
  opt(s, 'architectures', field, (x, f) => {
    expectStringArray(x, f).forEach((a, i) => oneOf(SECCOMP_ARCHES, 'architecture')(a, at(f, i)));
    return x;
  });
  opt(s, 'flags', field, (x, f) => {
    expectStringArray(x, f).forEach((a, i) => {
      if (!Object.prototype.hasOwnProperty.call(SECCOMP_FLAGS, a)) throw bad(at(f, i), a, 'unknown seccomp flag');
    });
    return x;
  });
  opt(s, 'listenerPath', field, (x, f) => {
    const p = expectString(x, f);
    if (!path.isAbsolute(p)) throw bad(f, p, 'listenerPath must be absolute');
    return p;
  });
  opt(s, 'listenerMetadata', field, expectString);
  opt(s, 'syscalls', field, (x, f) => {
    expectArray(x, f, 'objects').forEach((raw, i) => {
      const ff = at(f, i);
      const sc = expectObj(raw, ff);
      const names = req(sc, 'names', ff, expectStringArray);
      if (names.length === 0) throw bad(dot(ff, 'names'), names, 'names must not be empty');
      req(sc, 'action', ff, oneOf(SECCOMP_ACTIONS, 'action'));
      opt(sc, 'errnoRet', ff, (y, fff) => expectInt(y, fff, 0, UINT32_MAX));
      opt(sc, 'args', ff, (y, fff) => {
        expectArray(y, fff, 'objects').forEach((a, j) => {
          const fa = at(fff, j);
          const arg = expectObj(a, fa);
          req(arg, 'index', fa, (z, fz) => expectInt(z, fz, 0, 5));
          req(arg, 'value', fa, (z, fz) => expectInt(z, fz, 0, 2 ** 64));
          opt(arg, 'valueTwo', fa, (z, fz) => expectInt(z, fz, 0, 2 ** 64));
          req(arg, 'op', fa, oneOf(SECCOMP_OPS, 'operator'));
        });
        return y;
      });
    });
    return x;
  });
}

// ---------------------------------------------------------------------------------------
// the whole document

export interface ValidateOptions {
  /** process is required to create a container (default true). */
  requireProcess?: boolean;
}

const OCI_VERSION_RE =
  /^1\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/**
 * Validates a parsed config.json for `bundle` (absolute; root.path and relative bind
 * sources are resolved against it). Throws InvalidArgumentError naming the JSON path.
 */
export function validateSpec(raw: unknown, bundle: string, opts: ValidateOptions = {}): Spec {
  if (!isObj(raw)) throw bad('config', raw, 'config.json must hold a JSON object');
  const spec = raw;

  const version = req(spec, 'ociVersion', '', expectString);
  if (!OCI_VERSION_RE.test(version)) throw bad('ociVersion', version, 'must be a 1.x semantic version such as "1.0.2"');

  // root
  const root = req(spec, 'root', '', expectObj);
  const rootPath = req(root, 'path', 'root', expectString);
  if (rootPath === '') throw bad('root.path', rootPath, 'root path must not be empty');
  const st = statOrThrow(path.resolve(bundle, rootPath), 'root.path', rootPath, 'root filesystem');
  if (!st.isDirectory()) throw bad('root.path', rootPath, 'root filesystem must be a directory');
  opt(root, 'readonly', 'root', expectBool);

  // process
  let proc: Process | undefined;
  if (present(spec, 'process')) proc = checkProcess(spec.process, 'process');
  else if (opts.requireProcess !== false) throw missing('process');

  const hostname = opt(spec, 'hostname', '', expectString);
  if (hostname !== undefined && Buffer.byteLength(hostname) > HOST_NAME_MAX) throw bad('hostname', hostname, `must be at most ${HOST_NAME_MAX} bytes`);
  const domainname = opt(spec, 'domainname', '', expectString);
  if (domainname !== undefined && Buffer.byteLength(domainname) > HOST_NAME_MAX) throw bad('domainname', domainname, `must be at most ${HOST_NAME_MAX} bytes`);

  opt(spec, 'mounts', '', (x, f) => {
    expectArray(x, f, 'mount objects').forEach((m, i) => validateMount(m, at(f, i), bundle));
    return x;
  });

  opt(spec, 'hooks', '', (x, f) => {
    const h = expectObj(x, f);
    for (const stage of ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']) {
      opt(h, stage, f, validateHookList);
    }
    return h;
  });

  opt(spec, 'annotations', '', expectStringMap);

  // linux
  const linux: Obj = present(spec, 'linux') ? expectObj(spec.linux, 'linux') : {};
  const ns = new Map<NamespaceType, string | undefined>();
  opt(linux, 'namespaces', 'linux', (x, f) => {
    expectArray(x, f, 'namespace objects').forEach((raw, i) => {
      const fi = at(f, i);
      const n = expectObj(raw, fi);
      const type = req(n, 'type', fi, expectString);
      if (!isNamespaceType(type)) throw bad(dot(fi, 'type'), type, 'unknown namespace type');
      if (ns.has(type)) throw bad(dot(fi, 'type'), type, 'duplicate namespace');
      const p = opt(n, 'path', fi, expectString);
      if (p !== undefined) checkNamespacePath(p, type, dot(fi, 'path'));
      ns.set(type, p);
    });
    return x;
  });
  if (!ns.has('mount')) throw problem('linux.namespaces', 'a mount namespace is required (add {"type": "mount"})');
  if (ns.has('time') && !fs.existsSync('/proc/self/timens_offsets')) {
    throw problem('linux.namespaces', 'time namespaces are not enabled in this kernel');
  }
  if (ns.has('cgroup') && !fs.existsSync('/proc/self/ns/cgroup')) {
    throw problem('linux.namespaces', 'cgroup namespaces are not enabled in this kernel');
  }

  const uidMaps = opt(linux, 'uidMappings', 'linux', validateIdMappings);
  const gidMaps = opt(linux, 'gidMappings', 'linux', validateIdMappings);
  if (ns.has('user')) {
    if (!fs.existsSync('/proc/self/ns/user')) throw problem('linux.namespaces', 'user namespaces are not enabled in this kernel');
    if (ns.get('user') === undefined) {
      if (!uidMaps || uidMaps.length === 0) throw problem('linux.uidMappings', 'a new user namespace needs uid mappings');
      if (!gidMaps || gidMaps.length === 0) throw problem('linux.gidMappings', 'a new user namespace needs gid mappings');
      if (proc) {
        if (!isMapped(proc.user.uid, uidMaps)) throw bad('process.user.uid', proc.user.uid, 'is not mapped in the user namespace (linux.uidMappings)');
        if (!isMapped(proc.user.gid, gidMaps)) throw bad('process.user.gid', proc.user.gid, 'is not mapped in the user namespace (linux.gidMappings)');
        (proc.user.additionalGids ?? []).forEach((g, i) => {
          if (!isMapped(g, gidMaps)) throw bad(at('process.user.additionalGids', i), g, 'is not mapped in the user namespace (linux.gidMappings)');
        });
      }
    }
  } else if (uidMaps || gidMaps) {
    throw problem(uidMaps ? 'linux.uidMappings' : 'linux.gidMappings', 'id mappings need a user namespace (add {"type": "user"} to linux.namespaces)');
  }

  if (hostname && !ns.has('uts')) throw bad('hostname', hostname, 'unable to set hostname without a private uts namespace');
  if (domainname && !ns.has('uts')) throw bad('domainname', domainname, 'unable to set domainname without a private uts namespace');

  opt(linux, 'devices', 'linux', validateDevices);
  opt(linux, 'sysctl', 'linux', (x, f) => validateSysctl(x, f, ns));
  opt(linux, 'resources', 'linux', validateResources);
  opt(linux, 'cgroupsPath', 'linux', validateCgroupsPath);
  opt(linux, 'rootfsPropagation', 'linux', (x, f) => {
    const s = expectString(x, f);
    if (s !== '' && !Object.prototype.hasOwnProperty.call(PROPAGATION, s)) {
      throw bad(f, s, `must be one of ${Object.keys(PROPAGATION).join(', ')}`);
    }
    return s;
  });
  for (const k of ['maskedPaths', 'readonlyPaths']) {
    opt(linux, k, 'linux', (x, f) => {
      expectStringArray(x, f).forEach((p, i) => expectContainerPath(p, at(f, i)));
      return x;
    });
  }
  opt(linux, 'mountLabel', 'linux', expectString);
  opt(linux, 'seccomp', 'linux', validateSeccomp);
  opt(linux, 'timeOffsets', 'linux', (x, f) => {
    const o = expectObj(x, f);
    if (Object.keys(o).length > 0) {
      if (!ns.has('time')) throw bad(f, o, 'time offsets need a time namespace');
      throw bad(f, o, 'time namespace offsets are not supported by vkernel');
    }
    return o;
  });
  rejectPresent(linux, 'personality', 'linux', 'personality is not supported by vkernel');
  rejectPresent(linux, 'intelRdt', 'linux', 'intel rdt is not supported by vkernel');

  return spec as unknown as Spec;
}
