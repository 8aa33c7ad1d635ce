// Helpers for the shim daemon integration tests: a daemon (serveTasks in a child node, on a
// socket in a temp dir, publishing to a private containerd 1.6), a typed task client, the
// client side of FIFO stdio, and `ctr events` as the witness of what containerd received.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../runtime/native';
import type { DaemonConfig } from '../../shim/daemon/serve';
import { anyOf, methodTypes, timestamp, type ProtoInput, type ProtoServices, type ProtoTypes } from '../../shim/proto';
import { TtrpcClient } from '../../shim/ttrpc';
import type { TestContainerd } from '../harness';

type TaskSvc = ProtoServices['containerd.task.v2.Task'];
export type TaskMethod = keyof TaskSvc;
export type TaskReq<K extends TaskMethod> = ProtoInput<ProtoTypes[TaskSvc[K]['request']]>;
export type TaskRes<K extends TaskMethod> = ProtoTypes[TaskSvc[K]['response']];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export class DaemonUnderTest {
  stderr = '';
  exitCode: number | null | undefined;
  private constructor(
    readonly dir: string,
    readonly config: DaemonConfig,
    readonly child: ChildProcess,
    readonly client: TtrpcClient,
  ) {}

  static async start(cd: TestContainerd, opts: { configPath?: string } = {}): Promise<DaemonUnderTest> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkt-shimd-'));
    const config: DaemonConfig = {
      namespace: cd.namespace,
      address: cd.address,
      ttrpcAddress: cd.ttrpcAddress,
      publishBinary: cd.binary,
      socketPath: path.join(dir, 'shim.sock'),
      debug: true,
      groupId: 'test',
      stateRoot: path.join(dir, 'state'),
      configPath: opts.configPath ?? path.join(dir, 'no-config.toml'),
    };
    const child = spawn(process.execPath, [path.join(__dirname, 'shim-serve-entry.js')], {
      env: { ...process.env, VKERNEL_TEST_DAEMON: JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const ready = await new Promise<boolean>((resolve) => {
      child.stdout!.once('data', () => resolve(true));
      child.once('exit', () => resolve(false));
    });
    if (!ready) throw new Error(`shim daemon did not start:\n${stderr}`);
    const client = await TtrpcClient.connect(config.socketPath, { metadata: { 'containerd-namespace-ttrpc': cd.namespace } });
    const d = new DaemonUnderTest(dir, config, child, client);
    child.stderr!.removeAllListeners('data');
    d.stderr = stderr;
    child.stderr!.on('data', (x) => (d.stderr += x));
    child.once('exit', (code) => (d.exitCode = code));
    return d;
  }

  call<K extends TaskMethod>(method: K, req: TaskReq<K>, service = 'containerd.task.v2.Task'): Promise<TaskRes<K>> {
    const { requestType, responseType } = methodTypes(service, method);
    return this.client.call(service, method, requestType, req as never, responseType) as Promise<TaskRes<K>>;
  }

  /** A second connection, as containerd opens one per task. */
  connect(): Promise<TtrpcClient> {
    return TtrpcClient.connect(this.config.socketPath, { metadata: { 'containerd-namespace-ttrpc': this.config.namespace } });
  }

  /** Shutdown; the daemon exits when it serves nothing. Otherwise it is killed. Removes the temp dir. */
  async stop(): Promise<void> {
    if (this.exitCode === undefined) {
      await this.call('Shutdown', { id: 'x' }).catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const exited = await Promise.race([
        new Promise<boolean>((r) => this.child.once('exit', () => r(true))),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 5000))),
      ]);
      clearTimeout(timer);
      if (!exited) {
        this.child.kill('SIGKILL');
        await new Promise((r) => this.child.once('exit', r));
      }
    }
    await this.client.destroy();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * The client side of FIFO stdio, as containerd's cio does it: FIFOs made by the client,
 * stdout/stderr opened for reading before Create, stdin held open for writing.
 */
export class ClientFifos {
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  out = '';
  err = '';
  readonly outEnded: Promise<void>;
  readonly errEnded: Promise<void>;
  #stdinFd: number | undefined;
  readonly #sockets: net.Socket[] = [];

  constructor(dir: string, name: string, opts: { stdin?: boolean; stderr?: boolean } = {}) {
    const n = native();
    this.stdin = opts.stdin ? path.join(dir, `${name}-stdin`) : '';
    this.stdout = path.join(dir, `${name}-stdout`);
    this.stderr = opts.stderr === false ? '' : path.join(dir, `${name}-stderr`);
    for (const f of [this.stdin, this.stdout, this.stderr]) if (f) n.mkfifo(f, 0o600);
    const reader = (file: string, onData: (s: string) => void): Promise<void> => {
      if (!file) return Promise.resolve();
      const sock = new net.Socket({ fd: fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK), readable: true, writable: false });
      this.#sockets.push(sock);
      sock.on('data', (d: Buffer) => onData(d.toString()));
      return new Promise((r) => sock.once('end', () => r()));
    };
    this.outEnded = reader(this.stdout, (s) => (this.out += s));
    this.errEnded = reader(this.stderr, (s) => (this.err += s));
    // O_RDWR never blocks on a FIFO; the shim's own reader is what the process reads from.
    if (this.stdin) this.#stdinFd = fs.openSync(this.stdin, fs.constants.O_RDWR);
  }

  write(text: string): void {
    fs.writeSync(this.#stdinFd!, text);
  }

  /** The client is done writing stdin (it still has to CloseIO for the process to see EOF). */
  closeStdin(): void {
    if (this.#stdinFd !== undefined) fs.closeSync(this.#stdinFd);
    this.#stdinFd = undefined;
  }

  paths(): { stdin: string; stdout: string; stderr: string } {
    return { stdin: this.stdin, stdout: this.stdout, stderr: this.stderr };
  }

  close(): void {
    this.closeStdin();
    for (const s of this.#sockets) s.destroy();
    for (const f of [this.stdin, this.stdout, this.stderr]) if (f) fs.rmSync(f, { force: true });
  }
}

export interface SeenEvent {
  topic: string;
  event: Record<string, unknown>;
  line: string;
}

/** `ctr events` of the test containerd: what containerd actually received. */
export class EventWatcher {
  readonly events: SeenEvent[] = [];
  readonly #child: ChildProcess;
  #partial = '';

  constructor(cd: TestContainerd) {
    this.#child = cd.spawnCtr(['events']);
    this.#child.stdout!.on('data', (d: Buffer) => {
      const lines = (this.#partial + d.toString()).split('\n');
      this.#partial = lines.pop()!;
      for (const line of lines) {
        // "<date> <time> <tz> <namespace> <topic> <json>": the topic is the word starting with '/'.
        const m = / (\/[a-z/-]+) (\{.*\})\s*$/.exec(line);
        if (m) this.events.push({ topic: m[1], event: JSON.parse(m[2]) as Record<string, unknown>, line });
      }
    });
  }

  /** Events concerning a container, in arrival order. */
  of(containerId: string): SeenEvent[] {
    return this.events.filter((e) => e.event.container_id === containerId);
  }

  topicsOf(containerId: string): string[] {
    return this.of(containerId).map((e) => e.topic);
  }

  waitFor(what: string, pred: (e: SeenEvent) => boolean, timeoutMs = 10_000): Promise<SeenEvent> {
    return waitFor(what, () => this.events.find(pred), timeoutMs);
  }

  /** Until `ctr events` is subscribed: publishes nothing itself, waits for any event to show. */
  stop(): void {
    this.#child.kill('SIGKILL');
  }
}

/** Publishes probe events until `ctr events` shows one: the watcher is subscribed from then on. */
export async function ensureSubscribed(cd: TestContainerd, watcher: EventWatcher): Promise<void> {
  const client = await TtrpcClient.connect(cd.ttrpcAddress);
  const id = `probe-${process.pid}-${Date.now()}`;
  try {
    const deadline = Date.now() + 15_000;
    while (!watcher.events.some((e) => e.event.container_id === id)) {
      if (Date.now() > deadline) throw new Error('ctr events never showed a probe event');
      await client.call(
        'containerd.services.events.ttrpc.v1.Events',
        'Forward',
        'containerd.services.events.ttrpc.v1.ForwardRequest',
        { envelope: { timestamp: timestamp(), namespace: cd.namespace, topic: '/tasks/oom', event: anyOf('containerd.events.TaskOOM', { container_id: id }) } },
        'google.protobuf.Empty',
      );
      await sleep(100);
    }
  } finally {
    await client.destroy();
  }
}

/** An OCI process for Exec, from the bundle's own process with other args. */
export function processAny(base: object, args: string[], extra: object = {}): { type_url: string; value: Buffer } {
  return {
    type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process',
    value: Buffer.from(JSON.stringify({ ...base, ...extra, args })),
  };
}

/** Kill, wait and delete a task if the daemon still has it (cleanup after a failed test). */
export async function forceDelete(daemon: DaemonUnderTest, id: string): Promise<void> {
  const state = await daemon.call('State', { id }).catch(() => undefined);
  if (!state) return;
  await daemon.call('Kill', { id, signal: 9, all: true }).catch(() => undefined);
  if (state.status !== 1) await daemon.call('Wait', { id }).catch(() => undefined);
  await daemon.call('Delete', { id }).catch((err: Error) => process.stderr.write(`cleanup of ${id}: ${err.message}\n`));
  process.stderr.write(`--- daemon log ---\n${daemon.stderr.slice(-6000)}\n`);
}
