// The vkernel syscall layer: seccomp user notification for cold syscalls (sysinfo,
// sched_getaffinity), served by build/vkagent (runtime/vkernel/agent/vkagent.c).
//
// Per container (CLI path): create starts one agent (keeper + worker) in the container's
// state dir when the view is on and io.vkernel.mode is auto or notify; vkinit loads the
// fixed filter below as the last filter before execve and hands the listener to the agent
// over the OCI seccomp agent protocol; delete stops the agent. `vkernel agent --socket P`
// runs the same agent for runc / crun (linux.seccomp.listenerPath).
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { buildPath } from '../paths';
import type { ViewPolicy } from './policy';

export const SOCKET = 'vkagent.sock';
const PIDFILE = 'vkagent.pid';
const LOG = 'vkagent.log';
const FILTER = 'vkernel-notify.bpf';

/** SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (vkinit drops the latter on EINVAL). */
export const FILTER_FLAGS = (1 << 3) | (1 << 5);

const AUDIT_ARCH_X86_64 = 0xc000003e;
const NR_SYSINFO = 99;
const NR_SCHED_GETAFFINITY = 204;
const RET_ALLOW = 0x7fff0000;
const RET_USER_NOTIF = 0x7fc00000;

/**
 * The fixed filter (x86_64): sysinfo and sched_getaffinity -> USER_NOTIF, everything else
 * (and every other arch / x32) ALLOW. Same bytes as `vkagent filter`.
 */
export function notifyFilter(): Buffer {
  const ins: Array<[number, number, number, number]> = [
    [0x20, 0, 0, 4], // ld [arch]
    [0x15, 0, 3, AUDIT_ARCH_X86_64], // jeq x86_64, else allow
    [0x20, 0, 0, 0], // ld [nr]
    [0x15, 2, 0, NR_SYSINFO],
    [0x15, 1, 0, NR_SCHED_GETAFFINITY],
    [0x06, 0, 0, RET_ALLOW],
    [0x06, 0, 0, RET_USER_NOTIF],
  ];
  const b = Buffer.alloc(ins.length * 8);
  ins.forEach(([code, jt, jf, k], i) => {
    b.writeUInt16LE(code, i * 8);
    b.writeUInt8(jt, i * 8 + 2);
    b.writeUInt8(jf, i * 8 + 3);
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return b;
}

export function vkagentPath(): string {
  return buildPath('vkagent');
}

/** Whether this container gets the notify layer, and why not. */
export function syscallLayerWanted(policy: ViewPolicy, arch: string = process.arch): { want: boolean; reason?: string } {
  if (!policy.view) return { want: false, reason: 'view off' };
  if (policy.mode === 'off') return { want: false, reason: 'io.vkernel.mode=off' };
  if (policy.mode === 'ptrace' || policy.mode === 'preload') return { want: false, reason: `mode ${policy.mode} is not implemented` };
  if (arch !== 'x64') return { want: false, reason: `no filter for ${arch}` };
  if (!fs.existsSync(vkagentPath())) return { want: false, reason: `${vkagentPath()} is missing (make native)` };
  return { want: true };
}

/** The filter file, written once per state root. */
export function ensureFilterFile(root: string): string {
  const file = path.join(root, '.vkernel', FILTER);
  const want = notifyFilter();
  try {
    if (fs.readFileSync(file).equals(want)) return file;
  } catch {
    /* write it */
  }
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, want, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}

/** listenerMetadata for the agent: flat `key=value;...` (no JSON in C). */
export function agentMetadata(opts: { id: string; policy: ViewPolicy; viewConf?: string }): string {
  const kv: string[] = [];
  if (opts.viewConf) kv.push(`conf=${opts.viewConf}`);
  kv.push(`view=${opts.policy.view ? 'on' : 'off'}`, `rule=${opts.policy.cpuRule}`, `id=${opts.id}`);
  return kv.map((s) => s.replace(/[;"\\\n]/g, '_')).join(';');
}

/** AF_UNIX paths are limited to 108 bytes: long state dirs get a short socket elsewhere. */
export function agentSocketPath(stateDir: string): string {
  const p = path.join(path.resolve(stateDir), SOCKET);
  if (Buffer.byteLength(p) <= 100) return p;
  const h = crypto.createHash('sha256').update(p).digest('hex').slice(0, 20);
  return `/run/vkernel-agent-${h}.sock`;
}

export interface AgentHandle {
  socket: string;
  pid: number;
}

/** Starts `vkagent serve` detached; resolves once it listens. */
export function startAgent(stateDir: string, opts: { socket?: string; timeoutMs?: number; binary?: string } = {}): Promise<AgentHandle> {
  const dir = path.resolve(stateDir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socket = opts.socket ?? agentSocketPath(dir);
  fs.writeFileSync(path.join(dir, 'vkagent.socket'), socket);
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const log = fs.openSync(path.join(dir, LOG), 'a', 0o644);
    let child;
    try {
      child = spawn(opts.binary ?? vkagentPath(), ['serve', '--socket', socket, '--pidfile', path.join(dir, PIDFILE), '--ready-fd', '3'], {
        detached: true,
        stdio: ['ignore', log, log, 'pipe'],
        cwd: '/',
      });
    } finally {
      fs.closeSync(log);
    }
    let text = '';
    let done = false;
    const pipe = child.stdio[3] as Readable;
    const finish = (err: Error | undefined, pid?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pipe.destroy();
      child.unref();
      if (err) {
        if (child.exitCode === null && child.pid) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        reject(err);
      } else resolve({ socket, pid: pid! });
    };
    const timer = setTimeout(() => finish(new Error(`vkagent did not answer within ${timeoutMs} ms`)), timeoutMs);
    pipe.setEncoding('utf8');
    pipe.on('data', (d: string) => {
      text += d;
      const m = /^ok (\d+)\n/.exec(text);
      if (m) finish(undefined, Number(m[1]));
    });
    pipe.on('end', () => finish(new Error(`vkagent exited before it was ready${text ? `: ${text.trim()}` : ''}`)));
    child.on('error', (e) => finish(e));
  });
}

function alive(pid: number): boolean {
  if (!pid) return false;
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(st);
  } catch {
    return false;
  }
}

function isAgent(pid: number, socket: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('serve') && argv.includes(socket);
  } catch {
    return false;
  }
}

/** The agent's keeper and worker pids (from its pidfile; only live vkagent processes). */
export function agentPids(stateDir: string): number[] {
  const dir = path.resolve(stateDir);
  let socket = '';
  let pids: number[] = [];
  try {
    socket = fs.readFileSync(path.join(dir, 'vkagent.socket'), 'utf8');
    pids = fs.readFileSync(path.join(dir, PIDFILE), 'utf8').trim().split(/\s+/).map(Number);
  } catch {
    return [];
  }
  return pids.filter((p) => Number.isInteger(p) && p > 0 && alive(p) && isAgent(p, socket));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stops the agent of stateDir (keeper first: it kills its worker and removes the socket). */
export async function stopAgent(stateDir: string): Promise<void> {
  const dir = path.resolve(stateDir);
  let socket: string | undefined;
  try {
    socket = fs.readFileSync(path.join(dir, 'vkagent.socket'), 'utf8');
  } catch {
    return;
  }
  // SIGKILL both: the keeper's own cleanup (socket, conf files) is redone below, and its
  // listeners only serve this container, which is gone or being deleted.
  const pids = agentPids(dir);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 500 && pids.some(alive); i++) await sleep(2);
  for (const f of [socket, path.join(dir, PIDFILE), path.join(dir, 'vkagent.socket'), path.join(dir, 'filter.json')]) fs.rmSync(f, { force: true });
  fs.rmSync(`${socket}.d`, { recursive: true, force: true });
}

export interface FilterRecord {
  bpf: string;
  flags: number;
  agent: string;
  metadata: string;
}

/** Kept in the agent dir by create so `exec` can give its processes the same filter. */
export function saveFilterRecord(stateDir: string, r: FilterRecord): void {
  fs.writeFileSync(path.join(path.resolve(stateDir), 'filter.json'), JSON.stringify(r));
}

/** The container's filter record while its agent runs (undefined otherwise). */
export function liveFilterRecord(stateDir: string): FilterRecord | undefined {
  try {
    const r = JSON.parse(fs.readFileSync(path.join(path.resolve(stateDir), 'filter.json'), 'utf8')) as FilterRecord;
    return agentPids(stateDir).length > 0 && fs.existsSync(r.agent) && fs.existsSync(r.bpf) ? r : undefined;
  } catch {
    return undefined;
  }
}
