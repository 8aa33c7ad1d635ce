// Device cgroup rules: the OCI linux.resources.devices list → typed rules, runc's default
// allow list, and runc's devices "emulator" (the v1 devices cgroup state machine) used to
// compute the minimal set of devices.allow / devices.deny writes that turn the current state
// into the requested one (so updating a running container never opens a deny-all window
// unless the mode has to change). The same typed rules feed the v2 eBPF program when a
// loader exists (see v2/devices.ts).

import { invalidField } from '../errors';
import type { DeviceCgroup } from '../spec/types';

export type DeviceType = 'a' | 'b' | 'c';
export const WILDCARD = -1;

export interface DeviceRule {
  type: DeviceType;
  /** -1 = any. */
  major: number;
  /** -1 = any. */
  minor: number;
  /** Non-empty subset of "rwm", in that order. */
  access: string;
  allow: boolean;
}

function normalizeAccess(access: string): string {
  return ['r', 'w', 'm'].filter((c) => access.includes(c)).join('');
}

/**
 * OCI devices → rules (type defaults to "a", missing major/minor to wildcard), validated:
 * unknown type or access letters, empty access, bad numbers → InvalidArgumentError.
 */
export function deviceRulesFromOci(devices: DeviceCgroup[]): DeviceRule[] {
  const base = 'linux.resources.devices';
  if (!Array.isArray(devices)) throw invalidField(base, devices, 'must be an array');
  return devices.map((d, i) => {
    const f = `${base}[${i}]`;
    if (d === null || typeof d !== 'object') throw invalidField(f, d, 'must be an object');
    if (typeof d.allow !== 'boolean') throw invalidField(`${f}.allow`, d.allow, 'must be a boolean');
    const type = d.type === undefined || d.type === '' ? 'a' : d.type;
    if (type !== 'a' && type !== 'b' && type !== 'c') {
      throw invalidField(`${f}.type`, d.type, 'unknown device type, must be "a", "b" or "c"');
    }
    const num = (name: 'major' | 'minor'): number => {
      const v = d[name];
      if (v === undefined || v === null) return WILDCARD;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -1 || v > 0xffffffff) {
        throw invalidField(`${f}.${name}`, v, 'must be a non-negative integer (or -1/null for any)');
      }
      return v;
    };
    const major = num('major');
    const minor = num('minor');
    const access = d.access ?? '';
    if (typeof access !== 'string' || access === '' || !/^[rwm]+$/.test(access)) {
      throw invalidField(`${f}.access`, d.access, 'must be a non-empty combination of "r", "w" and "m"');
    }
    return { type, major, minor, access: normalizeAccess(access), allow: d.allow };
  });
}

/**
 * runc 1.1's default device cgroup rules (specconv AllowedDevices), appended after the
 * user's rules: mknod of any char/block device, /dev/null, /dev/random, /dev/full, /dev/tty,
 * /dev/zero, /dev/urandom, /dev/pts/*, /dev/ptmx and /dev/net/tun.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceRule[] = Object.freeze([
  { type: 'c', major: WILDCARD, minor: WILDCARD, access: 'm', allow: true },
  { type: 'b', major: WILDCARD, minor: WILDCARD, access: 'm', allow: true },
  { type: 'c', major: 1, minor: 3, access: 'rwm', allow: true },
  { type: 'c', major: 1, minor: 8, access: 'rwm', allow: true },
  { type: 'c', major: 1, minor: 7, access: 'rwm', allow: true },
  { type: 'c', major: 5, minor: 0, access: 'rwm', allow: true },
  { type: 'c', major: 1, minor: 5, access: 'rwm', allow: true },
  { type: 'c', major: 1, minor: 9, access: 'rwm', allow: true },
  { type: 'c', major: 136, minor: WILDCARD, access: 'rwm', allow: true },
  { type: 'c', major: 5, minor: 2, access: 'rwm', allow: true },
  { type: 'c', major: 10, minor: 200, access: 'rwm', allow: true },
] as DeviceRule[]);

/** The rules a container gets: the user's (in order), then runc's defaults. */
export function effectiveDeviceRules(devices: DeviceCgroup[] | undefined): DeviceRule[] {
  return [...deviceRulesFromOci(devices ?? []), ...DEFAULT_DEVICE_RULES.map((r) => ({ ...r }))];
}

/** "c 1:3 rwm", "a *:* rwm" — the devices.allow/deny and devices.list syntax. */
export function deviceRuleString(r: DeviceRule): string {
  const n = (v: number) => (v === WILDCARD ? '*' : String(v));
  return `${r.type} ${n(r.major)}:${n(r.minor)} ${r.access}`;
}

function metaKey(type: DeviceType, major: number, minor: number): string {
  return `${type} ${major} ${minor}`;
}

interface Meta {
  type: DeviceType;
  major: number;
  minor: number;
}

function parseMeta(key: string): Meta {
  const [type, major, minor] = key.split(' ');
  return { type: type as DeviceType, major: Number(major), minor: Number(minor) };
}

function permsDiff(a: string, b: string): string {
  return normalizeAccess([...a].filter((c) => !b.includes(c)).join(''));
}

function permsIntersect(a: string, b: string): string {
  return normalizeAccess([...a].filter((c) => b.includes(c)).join(''));
}

function permsUnion(a: string, b: string): string {
  return normalizeAccess(a + b);
}

/** Exceptions sorted the way runc writes them: by major, minor, then type (wildcards first). */
function orderRules(rules: Map<string, string>): { meta: Meta; perms: string }[] {
  return [...rules.entries()]
    .map(([k, perms]) => ({ meta: parseMeta(k), perms }))
    .sort(
      (a, b) =>
        a.meta.major - b.meta.major ||
        a.meta.minor - b.meta.minor ||
        (a.meta.type < b.meta.type ? -1 : a.meta.type > b.meta.type ? 1 : 0),
    );
}

/**
 * Model of a v1 devices cgroup (runc libcontainer/cgroups/devices Emulator): a default
 * (allow-all "black-list" or deny-all "white-list") plus exceptions.
 */
export class DeviceEmulator {
  defaultAllow: boolean;
  readonly rules = new Map<string, string>();

  constructor(defaultAllow = false) {
    this.defaultAllow = defaultAllow;
  }

  isBlacklist(): boolean {
    return this.defaultAllow;
  }

  /** Parse devices.list: "a *:* rwm" means allow-all; otherwise every line is an allow. */
  static fromList(text: string): DeviceEmulator {
    const lines = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    if (lines.some((l) => /^a \*:\* rwm$/.test(l))) return new DeviceEmulator(true);
    const emu = new DeviceEmulator(false);
    for (const line of lines) {
      const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]+)$/.exec(line);
      if (!m) throw new Error(`cgroup: invalid devices.list line ${JSON.stringify(line)}`);
      const num = (s: string) => (s === '*' ? WILDCARD : Number(s));
      emu.apply({ type: m[1] as DeviceType, major: num(m[2]), minor: num(m[3]), access: m[4], allow: true });
    }
    return emu;
  }

  static fromRules(rules: DeviceRule[]): DeviceEmulator {
    const emu = new DeviceEmulator(false);
    for (const r of rules) emu.apply(r);
    return emu;
  }

  apply(rule: DeviceRule): void {
    if (rule.type === 'a') {
      // Any "a" rule resets the cgroup to allow-all (allow) or deny-all (deny).
      this.defaultAllow = rule.allow;
      this.rules.clear();
      return;
    }
    const key = metaKey(rule.type, rule.major, rule.minor);
    // In allow-all mode exceptions are denies; in deny-all mode they are allows.
    if (rule.allow === this.defaultAllow) this.rmRule(rule, key);
    else this.rules.set(key, permsUnion(this.rules.get(key) ?? '', rule.access));
  }

  private rmRule(rule: DeviceRule, key: string): void {
    // cgroup v1 silently ignores removing part of a wildcard exception; refuse instead.
    const partials: [number, number][] = [
      [WILDCARD, rule.minor],
      [rule.major, WILDCARD],
      [WILDCARD, WILDCARD],
    ];
    for (const [maj, min] of partials) {
      const pk = metaKey(rule.type, maj, min);
      if (pk === key) continue;
      const perms = this.rules.get(pk);
      if (perms && permsIntersect(rule.access, perms) !== '') {
        throw invalidField(
          'linux.resources.devices',
          deviceRuleString(rule),
          `rule not supported by the cgroup v1 devices controller (cannot punch a hole in the wildcard rule ${deviceRuleString({ ...parseMeta(pk), access: perms, allow: true })})`,
        );
      }
    }
    const left = permsDiff(this.rules.get(key) ?? '', rule.access);
    if (left === '') this.rules.delete(key);
    else this.rules.set(key, left);
  }

  /**
   * The rules to write to go from this state to `target` (runc Emulator.Transition). A
   * disruptive "a *:* rwm" comes first when the default must change, or when this cgroup is
   * allow-all (its deny exceptions are invisible in devices.list).
   */
  transition(target: DeviceEmulator): DeviceRule[] {
    const out: DeviceRule[] = [];
    let old: Map<string, string> = this.rules;
    if (this.isBlacklist() || this.defaultAllow !== target.defaultAllow) {
      out.push({ type: 'a', major: WILDCARD, minor: WILDCARD, access: 'rwm', allow: target.defaultAllow });
      old = new Map();
    }
    for (const { meta, perms } of orderRules(old)) {
      const dropped = permsDiff(perms, target.rules.get(metaKey(meta.type, meta.major, meta.minor)) ?? '');
      if (dropped !== '') out.push({ ...meta, access: dropped, allow: target.defaultAllow });
    }
    for (const { meta, perms } of orderRules(target.rules)) {
      const gained = permsDiff(perms, old.get(metaKey(meta.type, meta.major, meta.minor)) ?? '');
      if (gained !== '') out.push({ ...meta, access: gained, allow: !target.defaultAllow });
    }
    return out;
  }

  /**
   * The exceptions in runc's order (major, minor, type): allows in deny-all mode, denies in
   * allow-all mode. With the default, this is the whole state (the v2 program's input).
   */
  exceptions(): DeviceRule[] {
    return orderRules(this.rules).map(({ meta, perms }) => ({ ...meta, access: perms, allow: !this.defaultAllow }));
  }

  equals(other: DeviceEmulator): boolean {
    if (this.defaultAllow !== other.defaultAllow || this.rules.size !== other.rules.size) return false;
    for (const [k, v] of this.rules) if (other.rules.get(k) !== v) return false;
    return true;
  }
}
