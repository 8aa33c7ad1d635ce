// Flattens a validated seccomp profile into the plan that build/vkseccomp (vkseccomp.c)
// compiles with libseccomp. All policy is decided here; the C side only resolves syscall
// names and calls libseccomp.
//
// Plan format (text, one record per line, tokens separated by one space; every token
// matches [A-Za-z0-9_]+, so no quoting exists):
//
//   vkseccomp 1                      header, format version
//   default <action>                 seccomp_init(action)
//   arch <name>                      seccomp_arch_add(seccomp_arch_resolve_name(name)); 0..n
//   optimize <level>                 SCMP_FLTATR_CTL_OPTIMIZE (optional)
//   rule <idx> <syscall> <action> <n> [<arg> <op> <a> <b>]*n
//                                    seccomp_rule_add_array(action, resolve(syscall), n cmps)
//   end                              last line
//
// <action> is the final libseccomp action value in decimal (SCMP_ACT_ERRNO(e) etc. already
// combined); <op> is the `enum scmp_compare` value; <a>, <b> are u64 in decimal (datum_a,
// datum_b: for MASKED_EQ a is the mask, b the value). <idx> is the rule's position in
// linux.seccomp.syscalls, only used in messages.
//
// As runc: one `rule` per syscall name; a rule whose action equals the default action is
// dropped (libseccomp refuses it, and it changes nothing); when one argument index has
// more than one comparison, each comparison becomes a rule of its own (OR), otherwise all
// comparisons form one rule (AND).
import {
  actionValue,
  ARCHITECTURES,
  FLAGS,
  OPERATORS,
  SECCOMP_FILTER_FLAG_NEW_LISTENER,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_TSYNC,
  SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
} from './constants';
import { ValidatedArg, ValidatedSeccomp } from './validate';

export const PLAN_VERSION = 1;

export interface PlanCompare {
  arg: number;
  op: number;
  a: bigint;
  b: bigint;
}

export interface PlanRule {
  /** Index in linux.seccomp.syscalls. */
  index: number;
  syscall: string;
  action: number;
  compares: PlanCompare[];
}

export interface SeccompPlan {
  defaultAction: number;
  /** libseccomp arch names (x86_64, x86, ...). */
  arches: string[];
  optimize?: number;
  rules: PlanRule[];
}

/** runc enables libseccomp's binary-tree optimisation above this many syscall entries. */
const OPTIMIZE_ABOVE = 32;

function compare(a: ValidatedArg): PlanCompare {
  return { arg: a.index, op: OPERATORS[a.op], a: a.value, b: a.valueTwo };
}

export function buildPlan(v: ValidatedSeccomp): SeccompPlan {
  const defaultAction = actionValue(v.defaultAction, v.defaultErrnoRet);
  const rules: PlanRule[] = [];
  let entries = 0;
  for (const r of v.rules) {
    entries += r.names.length;
    const action = actionValue(r.action, r.errnoRet);
    if (action === defaultAction) continue;
    const counts = new Map<number, number>();
    for (const a of r.args) counts.set(a.index, (counts.get(a.index) ?? 0) + 1);
    const split = [...counts.values()].some((n) => n > 1);
    const groups: PlanCompare[][] = split ? r.args.map((a) => [compare(a)]) : [r.args.map(compare)];
    for (const syscall of r.names) {
      for (const compares of groups) rules.push({ index: r.index, syscall, action, compares });
    }
  }
  return {
    defaultAction,
    arches: v.architectures.map((a) => ARCHITECTURES[a]),
    ...(entries > OPTIMIZE_ABOVE ? { optimize: 2 } : {}),
    rules,
  };
}

/** The plan as the text vkseccomp reads (see the format above). */
export function encodePlan(p: SeccompPlan): string {
  const lines = [`vkseccomp ${PLAN_VERSION}`, `default ${p.defaultAction}`];
  for (const a of p.arches) lines.push(`arch ${a}`);
  if (p.optimize !== undefined) lines.push(`optimize ${p.optimize}`);
  for (const r of p.rules) {
    const cmps = r.compares.map((c) => `${c.arg} ${c.op} ${c.a} ${c.b}`);
    lines.push(['rule', r.index, r.syscall, r.action, r.compares.length, ...cmps].join(' '));
  }
  lines.push('end');
  return lines.join('\n') + '\n';
}

/**
 * The kernel filter flags (SECCOMP_FILTER_FLAG_*) the init helper passes to seccomp(2).
 * `supported` is the kernel's mask from probeSeccomp(); it only decides whether the
 * default SPEC_ALLOW applies (requested flags are checked by the caller).
 * NEW_LISTENER is added when a rule notifies; TSYNC together with NEW_LISTENER needs
 * TSYNC_ESRCH (the kernel refuses the pair otherwise), as libseccomp does.
 */
export function filterFlags(v: ValidatedSeccomp, supported = ~0): number {
  let flags = 0;
  if (v.flags === undefined) {
    if (supported & SECCOMP_FILTER_FLAG_SPEC_ALLOW) flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  } else {
    for (const f of v.flags) flags |= FLAGS[f];
  }
  if (v.notify) flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  if (flags & SECCOMP_FILTER_FLAG_TSYNC && flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  return flags >>> 0;
}
