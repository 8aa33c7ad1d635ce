// Per-container vkernel policy from OCI annotations (prefix `io.vkernel.`). Pure: no I/O.
//
//   io.vkernel.view      on | off                      default on
//   io.vkernel.cpu-rule  cpuset | quota | min          default min
//   io.vkernel.files     comma list of VIEW_FILES, or "all"   default all
//   io.vkernel.mode      auto | notify | ptrace | preload | off   default auto
//                        (the syscall layer's mechanism; only parsed and validated here)
//   io.vkernel.syscalls  all | none | comma list of VIRTUAL_SYSCALLS   default all
//                        (which calls the syscall layer answers; the rest pass through)
//
// The rules behind each value are in docs/vkernel-view.md.
import { InvalidArgumentError } from '../errors';

export const ANNOTATION_PREFIX = 'io.vkernel.';
export const ANNOTATIONS = {
  view: 'io.vkernel.view',
  cpuRule: 'io.vkernel.cpu-rule',
  files: 'io.vkernel.files',
  mode: 'io.vkernel.mode',
  syscalls: 'io.vkernel.syscalls',
} as const;

/** The syscalls the syscall layer can answer (docs/vkernel-syscalls.md). */
export const VIRTUAL_SYSCALLS = ['sysinfo', 'sched_getaffinity'] as const;
export type VirtualSyscall = (typeof VIRTUAL_SYSCALLS)[number];

export const CPU_RULES = ['cpuset', 'quota', 'min'] as const;
export type CpuRule = (typeof CPU_RULES)[number];

export const SYSCALL_MODES = ['auto', 'notify', 'ptrace', 'preload', 'off'] as const;
export type SyscallMode = (typeof SYSCALL_MODES)[number];

/**
 * What can be virtualized. `pressure` is all of /proc/pressure/*; `sys-cpu` and `sys-node`
 * are the whole /sys/devices/system/cpu and /sys/devices/system/node directories.
 */
export const VIEW_FILES = [
  'cpuinfo',
  'meminfo',
  'stat',
  'uptime',
  'loadavg',
  'swaps',
  'diskstats',
  'pressure',
  'sys-cpu',
  'sys-node',
] as const;
export type ViewFile = (typeof VIEW_FILES)[number];

export interface ViewPolicy {
  /** false: no view at all (no supervisor, no mounts); a live switch to off shows host content. */
  view: boolean;
  cpuRule: CpuRule;
  /** Virtualized files, in VIEW_FILES order. */
  files: ViewFile[];
  /** Syscall-layer mechanism (not used by the file view). */
  mode: SyscallMode;
  /** The syscalls the layer answers, in VIRTUAL_SYSCALLS order (empty: none). */
  syscalls: VirtualSyscall[];
}

export const DEFAULT_POLICY: Readonly<ViewPolicy> = Object.freeze({
  view: true,
  cpuRule: 'min',
  files: [...VIEW_FILES],
  mode: 'auto',
  syscalls: [...VIRTUAL_SYSCALLS],
});

/** Path spellings accepted in io.vkernel.files besides the short names. */
const FILE_ALIASES: Record<string, ViewFile> = {
  '/sys/devices/system/cpu': 'sys-cpu',
  '/sys/devices/system/node': 'sys-node',
  '/proc/pressure': 'pressure',
};
for (const f of VIEW_FILES) if (!f.startsWith('sys-') && f !== 'pressure') FILE_ALIASES[`/proc/${f}`] = f;

function invalid(key: string, value: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`annotation ${key}: ${why} (got ${JSON.stringify(value)})`, `annotations.${key}`);
}

function oneOf<T extends string>(key: string, raw: string, allowed: readonly T[]): T {
  const v = raw.trim().toLowerCase();
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw invalid(key, raw, `must be one of ${allowed.join(', ')}`);
}

export function parseFiles(raw: string, key: string = ANNOTATIONS.files): ViewFile[] {
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw invalid(key, raw, `is empty: list files or use "all" (${ANNOTATIONS.view}=off turns the view off)`);
  const set = new Set<ViewFile>();
  for (const item of items) {
    const lower = item.toLowerCase();
    if (lower === 'all') {
      VIEW_FILES.forEach((f) => set.add(f));
      continue;
    }
    const name = (VIEW_FILES as readonly string[]).includes(lower) ? (lower as ViewFile) : FILE_ALIASES[item.replace(/\/+$/, '')];
    if (!name) throw invalid(key, raw, `unknown file ${JSON.stringify(item)}; known: all, ${VIEW_FILES.join(', ')}`);
    set.add(name);
  }
  return VIEW_FILES.filter((f) => set.has(f));
}

/** io.vkernel.syscalls: "all", "none", or a comma list of VIRTUAL_SYSCALLS. */
export function parseSyscalls(raw: string, key: string = ANNOTATIONS.syscalls): VirtualSyscall[] {
  const items = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  const known = `known: all, none, ${VIRTUAL_SYSCALLS.join(', ')}`;
  if (items.length === 0) throw invalid(key, raw, `is empty: list syscalls, or use "all" or "none"`);
  if (items.length === 1 && items[0] === 'none') return [];
  const set = new Set<VirtualSyscall>();
  for (const item of items) {
    if (item === 'all') VIRTUAL_SYSCALLS.forEach((c) => set.add(c));
    else if ((VIRTUAL_SYSCALLS as readonly string[]).includes(item)) set.add(item as VirtualSyscall);
    else throw invalid(key, raw, `unknown syscall ${JSON.stringify(item)}${item === 'none' ? ' ("none" goes alone)' : ''}; ${known}`);
  }
  return VIRTUAL_SYSCALLS.filter((c) => set.has(c));
}

/** The policy from a container's annotations; missing keys take DEFAULT_POLICY. */
export function parseViewPolicy(annotations: Record<string, string> | undefined = {}): ViewPolicy {
  const a = annotations ?? {};
  const p: ViewPolicy = { ...DEFAULT_POLICY, files: [...DEFAULT_POLICY.files], syscalls: [...DEFAULT_POLICY.syscalls] };
  const get = (k: string): string | undefined => (typeof a[k] === 'string' ? a[k] : undefined);
  const view = get(ANNOTATIONS.view);
  if (view !== undefined) p.view = oneOf(ANNOTATIONS.view, view, ['on', 'off'] as const) === 'on';
  const rule = get(ANNOTATIONS.cpuRule);
  if (rule !== undefined) p.cpuRule = oneOf(ANNOTATIONS.cpuRule, rule, CPU_RULES);
  const files = get(ANNOTATIONS.files);
  if (files !== undefined) p.files = parseFiles(files);
  const mode = get(ANNOTATIONS.mode);
  if (mode !== undefined) p.mode = oneOf(ANNOTATIONS.mode, mode, SYSCALL_MODES);
  const syscalls = get(ANNOTATIONS.syscalls);
  if (syscalls !== undefined) p.syscalls = parseSyscalls(syscalls);
  return p;
}

/** io.vkernel.* keys this module does not know (typos); the caller decides to warn or fail. */
export function unknownVkernelAnnotations(annotations: Record<string, string> | undefined, extraKnown: string[] = []): string[] {
  const known = new Set<string>([...Object.values(ANNOTATIONS), ...extraKnown]);
  return Object.keys(annotations ?? {}).filter((k) => k.startsWith(ANNOTATION_PREFIX) && !known.has(k));
}

/** The annotations that reproduce `p` (inverse of parseViewPolicy). */
export function policyToAnnotations(p: ViewPolicy): Record<string, string> {
  const all = VIEW_FILES.every((f) => p.files.includes(f));
  return {
    [ANNOTATIONS.view]: p.view ? 'on' : 'off',
    [ANNOTATIONS.cpuRule]: p.cpuRule,
    [ANNOTATIONS.files]: all ? 'all' : p.files.join(','),
    [ANNOTATIONS.mode]: p.mode,
    [ANNOTATIONS.syscalls]: syscallsValue(p.syscalls),
  };
}

/** The io.vkernel.syscalls value (and vkfs.conf / agent metadata value) for a list. */
export function syscallsValue(list: readonly VirtualSyscall[] | undefined): string {
  const l = list ?? VIRTUAL_SYSCALLS;
  if (l.length === 0) return 'none';
  return VIRTUAL_SYSCALLS.every((c) => l.includes(c)) ? 'all' : l.join(',');
}
