// Rows about containerd: which one answers at --address, which shim protocol it gets from
// us and why (shim/bootstrap/negotiate.ts describeProtocolChoice), whether it can find
// containerd-shim-vkernel-v2, and whether its config gives CRI a vkernel runtime. containerd
// not running is a warning: vkernel still works as an OCI runtime without it.
import * as path from 'node:path';
import type { ProtocolDescription } from '../../shim/bootstrap/negotiate';
import { ANNOTATION_PATTERN, DEFAULT_CONTAINERD_CONFIG, DEFAULT_VKERNEL_CONFIG, RUNTIME_TYPE, criRuntimes, familyOf } from './containerd-config';
import { parseContainerdVersion, PROTOCOL_ENV } from '../../shim/bootstrap/negotiate';
import { lookPath } from './host-rows';
import type { CheckProbe, ContainerdProcess, ProtocolContext } from './probe';
import { row, type CheckRow } from './report';
import { tableAt, toml } from './toml';

export const SHIM_BINARY = 'containerd-shim-vkernel-v2';

/** negotiate.ts words the unreachable-containerd warning like this; the containerd row reports it instead. */
const UNREACHABLE = /^cannot ask containerd at \S+ for its version: (.*)$/;

export function containerdRow(d: ProtocolDescription, proc: ContainerdProcess | undefined): CheckRow {
  const v = parseContainerdVersion(d.containerd);
  if (!v) {
    const error = d.warnings.map((w) => UNREACHABLE.exec(w)?.[1]).find(Boolean) ?? 'no version';
    // "… (caused by: connect ENOENT /run/…)" from the HTTP/2 client: the errno part is the news.
    const why = /connect E[A-Z]+ [^)\s]*/.exec(error)?.[0] ?? error;
    return row('containerd', 'warn', `no containerd answers at ${d.address} (${why}); vkernel still works as an OCI runtime`);
  }
  const where = proc ? ` (pid ${proc.pid}, ${proc.exe}, config ${proc.configFile ?? DEFAULT_CONTAINERD_CONFIG})` : '';
  if (!familyOf(v)) return row('containerd', 'warn', `containerd ${v.text} at ${d.address}${where}: not supported (1.6, 1.7 or 2.x)`);
  return row('containerd', 'pass', `containerd ${v.text} at ${d.address}${where}`);
}

export function protocolRow(d: ProtocolDescription, context: ProtocolContext = {}): CheckRow {
  const warnings = d.warnings.filter((w) => !UNREACHABLE.test(w));
  const from = [
    context.env && `containerd's environment${context.env[PROTOCOL_ENV] ? ` (${PROTOCOL_ENV}=${context.env[PROTOCOL_ENV]})` : ''}`,
    `shim config ${context.configPath ?? DEFAULT_VKERNEL_CONFIG}`,
  ].filter(Boolean);
  const detail =
    `${d.protocol}, bootstrap version ${d.version} (${d.decidedBy}); start answers ${d.example}; why: ${d.reason}; read: ${from.join(', ')}` +
    warnings.map((w) => `; warning: ${w}`).join('');
  return row('shim-protocol', warnings.length ? 'warn' : 'pass', detail);
}

/**
 * Where containerd finds the shim binary: its PATH, then the directory of its own executable
 * (runtime/v2 shim Command). Without a running containerd, this process's PATH and /usr/bin.
 */
export function shimBinaryRow(proc: ContainerdProcess | undefined, envPath: string, executable: (f: string) => boolean): CheckRow {
  const searchPath = proc ? `${proc.path}:${path.dirname(proc.exe)}` : `${envPath}:/usr/bin`;
  const found = lookPath(SHIM_BINARY, searchPath, executable);
  const whose = proc ? "containerd's PATH" : "this shell's PATH (containerd is not running)";
  if (found) return row('shim-binary', 'pass', `${found} (found on ${whose})`);
  return row('shim-binary', 'warn', `${SHIM_BINARY} not found on ${whose}: install it with make install (${RUNTIME_TYPE} cannot start)`);
}

/** CRI passes annotations matching a pattern: exact, or a prefix ending in '*'. */
function allows(patterns: unknown, annotation: string): boolean {
  if (!Array.isArray(patterns)) return false;
  return patterns.some((p) => typeof p === 'string' && (p === annotation || (p.endsWith('*') && annotation.startsWith(p.slice(0, -1)))));
}

export function configRow(file: string, text: string | undefined): CheckRow {
  const hint = 'vkernel containerd-config prints the entry';
  if (text === undefined) return row('containerd-config', 'warn', `${file} missing: containerd runs with defaults and CRI has no vkernel runtime; ${hint}`);
  let doc: Record<string, unknown>;
  try {
    doc = toml().parse(text);
  } catch (err) {
    return row('containerd-config', 'warn', `${file}: cannot parse: ${(err as Error).message.split('\n')[0]}`);
  }
  const c = criRuntimes(doc);
  if (!c.where) return row('containerd-config', 'warn', `${file}: unknown config version ${c.version}`);
  const table = `plugins."${c.where[0]}".${c.where.slice(1).join('.')}`;
  const notes = [
    c.disabled && 'the CRI plugin is disabled',
    !c.disabled && Object.keys(c.runtimes).length > 0 && !(c.defaultName in c.runtimes) &&
      `CRI will not load: default_runtime_name "${c.defaultName}" has no entry in ${table}`,
  ].filter((n): n is string => typeof n === 'string');
  const tail = notes.map((n) => `; ${n}`).join('');
  const ours = Object.entries(c.runtimes).filter(([, rt]) => tableAt(rt, [])?.runtime_type === RUNTIME_TYPE);
  if (ours.length === 0) {
    return row('containerd-config', 'warn', `${file} (version ${c.version}): no runtime with runtime_type ${RUNTIME_TYPE} in ${table} (ctr --runtime works without one, CRI needs it); ${hint}${tail}`);
  }
  const [name, rt] = ours[0] as [string, Record<string, unknown>];
  const probe = ANNOTATION_PATTERN.replace('*', 'view');
  const missing = (['pod_annotations', 'container_annotations'] as const).filter((k) => !allows(rt[k], probe));
  const found = `${file} (version ${c.version}): runtime ${name} in ${table}`;
  if (missing.length) return row('containerd-config', 'warn', `${found}; ${missing.join(' and ')} lack "${ANNOTATION_PATTERN}": CRI drops the io.vkernel.* annotations${tail}`);
  return row('containerd-config', notes.length ? 'warn' : 'pass', `${found}; passes ${ANNOTATION_PATTERN} annotations${tail}`);
}

export async function containerdRows(p: CheckProbe, address: string): Promise<CheckRow[]> {
  const proc = p.containerdProcess(address);
  const configFile = proc?.configFile ?? DEFAULT_CONTAINERD_CONFIG;
  const configText = p.readFile(configFile);
  // The protocol as the shims of that containerd would decide it: with containerd's own
  // environment (when /proc shows it) and the ConfigPath its vkernel runtime entry passes.
  const context: ProtocolContext = { configPath: runtimeConfigPath(configText) };
  if (proc) context.env = proc.shimProtocol === undefined ? {} : { [PROTOCOL_ENV]: proc.shimProtocol };
  const d = await p.protocol(address, context);
  return [containerdRow(d, proc), protocolRow(d, context), shimBinaryRow(proc, p.envPath(), p.executable), configRow(configFile, configText)];
}

/** options.ConfigPath of the first CRI runtime with our runtime_type (undefined: none, or the default). */
export function runtimeConfigPath(configText: string | undefined): string | undefined {
  if (configText === undefined) return undefined;
  try {
    const c = criRuntimes(toml().parse(configText));
    for (const rt of Object.values(c.runtimes)) {
      const entry = tableAt(rt, []);
      const configPath = tableAt(entry, ['options'])?.ConfigPath;
      if (entry?.runtime_type === RUNTIME_TYPE && typeof configPath === 'string' && configPath !== '') return configPath;
    }
  } catch {
    // configRow reports a config that does not parse
  }
  return undefined;
}
