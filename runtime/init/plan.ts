// Encodes an InitPlan into the record format vkinit reads (PROTOCOL.md "Plan encoding"):
// `op NUL argc NUL arg1 NUL ... argN NUL`, numbers in decimal, capability masks in hex.
import { InvalidArgumentError } from '../errors';
import type { InitPlan, PlanCaps } from './plan-types';

type Arg = string | number;

class RecordWriter {
  private readonly parts: Buffer[] = [];

  add(op: string, ...args: Arg[]): void {
    const strs = args.map((a) => (typeof a === 'number' ? String(a) : a));
    for (const s of [op, ...strs]) {
      if (s.includes('\0')) {
        throw new InvalidArgumentError(`init plan: record "${op}" holds a NUL byte`, op);
      }
    }
    this.parts.push(Buffer.from([op, String(strs.length), ...strs].map((s) => s + '\0').join(''), 'utf8'));
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function uint(field: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new InvalidArgumentError(`init plan: ${field} is not a non-negative integer (got ${n})`, field);
  }
  return n;
}

/** A flag word; one computed with JS `|` comes out negative when bit 31 is set. */
function flags(field: string, n: number): number {
  return uint(field, Number.isSafeInteger(n) && n < 0 && n >= -0x80000000 ? n >>> 0 : n);
}

function int(field: string, n: number): number {
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`init plan: ${field} is not an integer (got ${n})`, field);
  return n;
}

function u64(field: string, s: string): string {
  if (!/^\d+$/.test(s) || BigInt(s) > 0xffffffffffffffffn) {
    throw new InvalidArgumentError(`init plan: ${field} is not a decimal u64 (got ${JSON.stringify(s)})`, field);
  }
  return s;
}

function hexMask(field: string, s: string): string {
  if (!/^[0-9a-fA-F]{1,16}$/.test(s)) {
    throw new InvalidArgumentError(`init plan: ${field} is not a hex mask (got ${JSON.stringify(s)})`, field);
  }
  return s.toLowerCase();
}

function capsArgs(c: PlanCaps): Arg[] {
  return [
    hexMask('caps.bounding', c.bounding),
    hexMask('caps.effective', c.effective),
    hexMask('caps.inheritable', c.inheritable),
    hexMask('caps.permitted', c.permitted),
    hexMask('caps.ambient', c.ambient),
    uint('caps.lastCap', c.lastCap),
  ];
}

/** The plan as vkinit's record sequence (the frame body, without the length header). */
export function encodePlan(plan: InitPlan): Buffer {
  const w = new RecordWriter();
  w.add('mode', plan.mode);
  w.add('clone_flags', flags('cloneFlags', plan.cloneFlags));
  for (const j of plan.joins) w.add('join', flags('joins.nstype', j.nstype), j.path);
  if (plan.uidMap !== undefined) w.add('uid_map', plan.uidMap);
  if (plan.gidMap !== undefined) w.add('gid_map', plan.gidMap);
  if (plan.setgroupsDeny) w.add('setgroups_deny');
  for (const p of plan.cgroupProcs) w.add('cgroup_procs', p);
  if (plan.execFifo !== undefined) w.add('exec_fifo', plan.execFifo);
  if (plan.consoleSocket !== undefined) w.add('console_socket', plan.consoleSocket);
  if (plan.wait) w.add('wait');
  if (plan.syncHooks) w.add('sync_hooks');
  w.add('preserve_fds', uint('preserveFds', plan.preserveFds));
  if (plan.sessionKeyring) {
    const { name, addPerm } = plan.sessionKeyring;
    if (name === '') throw new InvalidArgumentError('init plan: sessionKeyring.name is empty', 'sessionKeyring');
    if (!Number.isSafeInteger(addPerm) || addPerm < 0 || addPerm > 0xffffffff) {
      throw new InvalidArgumentError(`init plan: sessionKeyring.addPerm is not a u32 (got ${addPerm})`, 'sessionKeyring');
    }
    w.add('session_keyring', name, addPerm);
  }
  if (plan.loopbackUp) w.add('loopback_up');

  if (plan.rootfs !== undefined) w.add('rootfs', plan.rootfs);
  if (plan.rootReadonly) w.add('root_readonly');
  if (plan.noPivot) w.add('no_pivot');
  w.add('root_propagation', flags('rootPropagation', plan.rootPropagation));
  for (const m of plan.mounts) {
    w.add(
      'mount',
      m.source,
      m.destination,
      m.fstype,
      flags('mounts.flags', m.flags),
      m.propagation.map((p) => flags('mounts.propagation', p)).join(','),
      m.data,
      m.kind,
    );
  }
  for (const d of plan.devices) {
    w.add(
      'device',
      d.path,
      d.type,
      uint('devices.major', d.major),
      uint('devices.minor', d.minor),
      uint('devices.mode', d.mode & 0o7777),
      uint('devices.uid', d.uid),
      uint('devices.gid', d.gid),
      d.bind ? 'bind' : 'mknod',
    );
  }
  for (const [target, link] of plan.symlinks) w.add('symlink', target, link);
  for (const p of plan.maskedPaths) w.add('masked', p);
  for (const p of plan.readonlyPaths) w.add('readonly', p);
  for (const [k, v] of plan.sysctl) w.add('sysctl', k, v);
  if (plan.hostname !== undefined) w.add('hostname', plan.hostname);
  if (plan.domainname !== undefined) w.add('domainname', plan.domainname);

  if (plan.terminal) w.add('terminal');
  if (plan.consoleSize) {
    w.add('console_size', uint('consoleSize.rows', plan.consoleSize.rows), uint('consoleSize.cols', plan.consoleSize.cols));
  }
  w.add('cwd', plan.cwd);
  for (const a of plan.args) w.add('arg', a);
  for (const e of plan.env) w.add('env', e);
  for (const r of plan.rlimits) {
    w.add('rlimit', uint('rlimits.resource', r.resource), u64('rlimits.soft', r.soft), u64('rlimits.hard', r.hard));
  }
  if (plan.oomScoreAdj !== undefined) w.add('oom_score_adj', int('oomScoreAdj', plan.oomScoreAdj));
  w.add('user', uint('uid', plan.uid), uint('gid', plan.gid));
  // Always sent: an empty list clears supplementary groups (vkinit skips it when
  // setgroups is denied in a user namespace).
  w.add('groups', ...plan.additionalGids.map((g) => uint('additionalGids', g)));
  if (plan.umask !== undefined) w.add('umask', uint('umask', plan.umask));
  if (plan.caps) w.add('caps', ...capsArgs(plan.caps));
  if (plan.noNewPrivileges) w.add('no_new_privs');
  if (plan.apparmorProfile) w.add('apparmor_profile', plan.apparmorProfile);
  if (plan.selinuxLabel) w.add('selinux_label', plan.selinuxLabel);
  if (plan.mountLabel) w.add('mount_label', plan.mountLabel);
  const hooks = [
    ...plan.createContainerHooks.map((h) => ['createContainer', h] as const),
    ...plan.startContainerHooks.map((h) => ['startContainer', h] as const),
  ];
  for (const [stage, h] of hooks) {
    const args = h.args.length > 0 ? h.args : [h.path];
    w.add('hook', stage, uint('hooks.timeout', h.timeout), h.path, args.length, ...args, ...h.env);
  }
  if (plan.seccompBpf !== undefined) w.add('seccomp', plan.seccompBpf, flags('seccompFlags', plan.seccompFlags ?? 0));
  if (plan.seccompListener !== undefined) w.add('seccomp_listener', plan.seccompListener);
  if (plan.vkernelFilter !== undefined) {
    const v = plan.vkernelFilter;
    w.add('vkernel_filter', v.bpf, flags('vkernelFilter.flags', v.flags), v.agent, v.metadata);
  }
  return w.toBuffer();
}

/** One frame: `<decimal length>\n<bytes>`. */
export function frame(buf: Buffer | string): Buffer {
  const body = typeof buf === 'string' ? Buffer.from(buf, 'utf8') : buf;
  return Buffer.concat([Buffer.from(`${body.length}\n`, 'ascii'), body]);
}
