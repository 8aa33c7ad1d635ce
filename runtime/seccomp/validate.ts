// Validation of `linux.seccomp` (runtime-spec config-linux.md "Seccomp"), following runc
// where the spec leaves room. Every error names the JSON field path and the bad value.
//
// Decisions (runc-compatible unless said otherwise):
// - No defaultAction and no syscalls: seccomp is disabled (validateSeccomp returns null).
// - defaultErrnoRet / errnoRet: only with SCMP_ACT_ERRNO or SCMP_ACT_TRACE (the spec says
//   the runtime MUST fail otherwise). ERRNO takes 0..4095 (the kernel clamps to MAX_ERRNO),
//   TRACE takes 0..65535 (the 16-bit message for the tracer). Absent means EPERM.
// - SCMP_ACT_NOTIFY is not allowed as defaultAction, nor for `write` and `sendmsg`: the
//   init helper still makes those calls after loading the filter, to hand the listener fd
//   over, and would wait forever for an agent that has not got the fd yet.
// - listenerPath: required when any rule uses SCMP_ACT_NOTIFY, must be absolute; ignored
//   (as the spec says) when no rule notifies. listenerMetadata needs listenerPath.
// - flags: unset (absent or null) means runc's default, SPEC_ALLOW when the kernel has it;
//   [] means none. WAIT_KILLABLE_RECV only means something with a listener: without any
//   NOTIFY rule it is dropped with a warning (the kernel would refuse it).
// - Syscall names must be non-empty strings. A name that is not a syscall this libseccomp
//   knows is skipped with a warning (runc does the same, at debug level); names that cannot
//   be syscall names at all (anything but [A-Za-z0-9_]) are skipped here already.
// - args: index 0..5; value and valueTwo are u64. JSON numbers are exact only up to
//   2^53-1, and JSON.parse has already rounded anything larger, so numbers above that are
//   refused rather than silently compared against a different value. Callers that build a
//   profile in code may pass a bigint for the full u64 range.
import { InvalidArgumentError } from '../errors';
import {
  ACTIONS,
  ACTIONS_WITH_ERRNO,
  ARCHITECTURES,
  FLAGS,
  OPERATORS,
  SeccompActionName,
  SeccompOperatorName,
} from './constants';

export interface ValidatedArg {
  index: number;
  op: SeccompOperatorName;
  value: bigint;
  valueTwo: bigint;
}

export interface ValidatedRule {
  /** Position in linux.seccomp.syscalls, for messages. */
  index: number;
  /** Names that can be syscall names, in order, without duplicates. */
  names: string[];
  action: SeccompActionName;
  errnoRet?: number;
  args: ValidatedArg[];
}

export interface ValidatedSeccomp {
  defaultAction: SeccompActionName;
  defaultErrnoRet?: number;
  /** SCMP_ARCH_* names, in order, without duplicates. */
  architectures: string[];
  /** As given (deduplicated); undefined when unset, which means the default (SPEC_ALLOW). */
  flags?: string[];
  /** Set only when some rule notifies. */
  listenerPath?: string;
  listenerMetadata?: string;
  rules: ValidatedRule[];
  /** Some rule uses SCMP_ACT_NOTIFY. */
  notify: boolean;
  warnings: string[];
}

/** Syscalls that may not notify: the init helper calls them after the filter is loaded. */
export const NOTIFY_FORBIDDEN_SYSCALLS: readonly string[] = ['write', 'sendmsg'];

const SYSCALL_NAME = /^[A-Za-z0-9_]+$/;
const U64_MAX = (1n << 64n) - 1n;

function bad(field: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`${field}: ${why}`, field);
}

function show(v: unknown): string {
  if (typeof v === 'bigint') return v.toString();
  if (v === undefined) return 'undefined';
  const s = JSON.stringify(v);
  return s.length > 80 ? s.slice(0, 77) + '...' : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Absent and JSON null are both "not set", as in Go's encoding/json. */
function isUnset(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

function array(v: unknown, field: string): unknown[] {
  if (isUnset(v)) return [];
  if (!Array.isArray(v)) throw bad(field, `must be an array (got ${show(v)})`);
  return v;
}

function string(v: unknown, field: string): string {
  if (typeof v !== 'string') throw bad(field, `must be a string (got ${show(v)})`);
  return v;
}

function action(v: unknown, field: string): SeccompActionName {
  const s = string(v, field);
  if (!Object.prototype.hasOwnProperty.call(ACTIONS, s)) throw bad(field, `unknown action ${show(s)}`);
  return s as SeccompActionName;
}

function errnoRet(v: unknown, field: string, act: SeccompActionName, actionField: string): number | undefined {
  if (isUnset(v)) return undefined;
  if (!ACTIONS_WITH_ERRNO.has(act)) {
    throw bad(field, `only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, but ${actionField} is ${show(act)}`);
  }
  const max = act === 'SCMP_ACT_ERRNO' ? 4095 : 65535;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw bad(field, `must be an integer in 0..${max} (got ${show(v)})`);
  }
  return v;
}

function u64(v: unknown, field: string): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw bad(field, `must be an integer in 0..2^64-1 (got ${v})`);
    return v;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw bad(field, `must be a non-negative integer (got ${show(v)})`);
  }
  if (!Number.isSafeInteger(v)) {
    throw bad(field, `must be at most 2^53-1: larger JSON numbers are not exact (got ${show(v)})`);
  }
  return BigInt(v);
}

/**
 * Validates `linux.seccomp` (`input` as parsed from config.json; `field` is its path for
 * messages). Returns null when seccomp is disabled (no defaultAction and no syscalls).
 * Throws InvalidArgumentError naming the field on the first problem.
 */
export function validateSeccomp(input: unknown, field = 'linux.seccomp'): ValidatedSeccomp | null {
  if (isUnset(input)) return null;
  if (!isObject(input)) throw bad(field, `must be an object (got ${show(input)})`);
  const syscalls = array(input.syscalls, `${field}.syscalls`);
  if ((isUnset(input.defaultAction) || input.defaultAction === '') && syscalls.length === 0) return null;

  const warnings: string[] = [];
  const defaultAction = action(input.defaultAction, `${field}.defaultAction`);
  if (defaultAction === 'SCMP_ACT_NOTIFY') {
    throw bad(`${field}.defaultAction`, 'SCMP_ACT_NOTIFY cannot be the default action');
  }
  const defaultErrnoRet = errnoRet(input.defaultErrnoRet, `${field}.defaultErrnoRet`, defaultAction, `${field}.defaultAction`);

  const architectures: string[] = [];
  array(input.architectures, `${field}.architectures`).forEach((a, i) => {
    const f = `${field}.architectures[${i}]`;
    const s = string(a, f);
    if (!Object.prototype.hasOwnProperty.call(ARCHITECTURES, s)) throw bad(f, `unknown architecture ${show(s)}`);
    if (!architectures.includes(s)) architectures.push(s);
  });

  let flags: string[] | undefined;
  if (!isUnset(input.flags)) {
    flags = [];
    for (const [i, fl] of array(input.flags, `${field}.flags`).entries()) {
      const f = `${field}.flags[${i}]`;
      const s = string(fl, f);
      if (!Object.prototype.hasOwnProperty.call(FLAGS, s)) throw bad(f, `unknown flag ${show(s)}`);
      if (!flags.includes(s)) flags.push(s);
    }
  }

  const rules: ValidatedRule[] = [];
  let notify = false;
  syscalls.forEach((entry, i) => {
    const f = `${field}.syscalls[${i}]`;
    if (!isObject(entry)) throw bad(f, `must be an object (got ${show(entry)})`);
    if (isUnset(entry.names)) throw bad(`${f}.names`, 'is required');
    const rawNames = array(entry.names, `${f}.names`);
    if (rawNames.length === 0) throw bad(`${f}.names`, 'must contain at least one entry');
    const act = action(entry.action, `${f}.action`);
    const ret = errnoRet(entry.errnoRet, `${f}.errnoRet`, act, `${f}.action`);
    const names: string[] = [];
    rawNames.forEach((n, j) => {
      const nf = `${f}.names[${j}]`;
      const s = string(n, nf);
      if (s === '') throw bad(nf, 'must not be empty');
      if (!SYSCALL_NAME.test(s)) {
        warnings.push(`${nf}: unknown syscall ${show(s)} skipped`);
        return;
      }
      if (act === 'SCMP_ACT_NOTIFY' && NOTIFY_FORBIDDEN_SYSCALLS.includes(s)) {
        throw bad(nf, `SCMP_ACT_NOTIFY cannot be used for ${show(s)}: the runtime needs it to pass the listener fd on`);
      }
      if (!names.includes(s)) names.push(s);
    });
    const args: ValidatedArg[] = array(entry.args, `${f}.args`).map((arg, k) => {
      const af = `${f}.args[${k}]`;
      if (!isObject(arg)) throw bad(af, `must be an object (got ${show(arg)})`);
      const index = arg.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
        throw bad(`${af}.index`, `must be an integer in 0..5 (got ${show(index)})`);
      }
      const opName = string(arg.op, `${af}.op`);
      if (!Object.prototype.hasOwnProperty.call(OPERATORS, opName)) throw bad(`${af}.op`, `unknown operator ${show(opName)}`);
      if (isUnset(arg.value)) throw bad(`${af}.value`, 'is required');
      const value = u64(arg.value, `${af}.value`);
      const valueTwo = isUnset(arg.valueTwo) ? 0n : u64(arg.valueTwo, `${af}.valueTwo`);
      return { index, op: opName as SeccompOperatorName, value, valueTwo };
    });
    if (act === 'SCMP_ACT_NOTIFY') notify = true;
    rules.push({ index: i, names, action: act, ...(ret !== undefined ? { errnoRet: ret } : {}), args });
  });

  let listenerPath: string | undefined;
  let listenerMetadata: string | undefined;
  if (!isUnset(input.listenerPath)) listenerPath = string(input.listenerPath, `${field}.listenerPath`) || undefined;
  if (!isUnset(input.listenerMetadata)) {
    listenerMetadata = string(input.listenerMetadata, `${field}.listenerMetadata`) || undefined;
  }
  if (listenerPath !== undefined && !listenerPath.startsWith('/')) {
    throw bad(`${field}.listenerPath`, `must be an absolute path (got ${show(listenerPath)})`);
  }
  if (listenerPath !== undefined && listenerPath.includes('\0')) {
    throw bad(`${field}.listenerPath`, `must not contain NUL (got ${show(listenerPath)})`);
  }
  if (listenerMetadata !== undefined && listenerPath === undefined) {
    throw bad(`${field}.listenerMetadata`, 'must not be set without listenerPath');
  }
  if (notify && listenerPath === undefined) {
    throw bad(`${field}.listenerPath`, 'is required when a rule uses SCMP_ACT_NOTIFY');
  }
  if (flags?.includes('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV') && !notify) {
    warnings.push(`${field}.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV ignored: no rule uses SCMP_ACT_NOTIFY`);
    flags = flags.filter((x) => x !== 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV');
  }

  return {
    defaultAction,
    ...(defaultErrnoRet !== undefined ? { defaultErrnoRet } : {}),
    architectures,
    ...(flags !== undefined ? { flags } : {}),
    ...(notify ? { listenerPath, ...(listenerMetadata !== undefined ? { listenerMetadata } : {}) } : {}),
    rules,
    notify,
    warnings,
  };
}
