// One process's stdio, set up before the process exists and torn down at Delete.
//
// Without a terminal the process writes straight into the client's FIFOs (or the log file,
// or the logger's pipes): we open them, hand the fds to vkinit, and drop our copies once
// the process holds its own, so EOF reaches the client exactly when the process and its
// children are done. We keep a read end of each output FIFO open meanwhile, as the runc
// shim does, so a client that goes away never turns writes into EPIPE.
//
// With a terminal, stderr is never opened (the client never opens it, a blocking open would
// hang): the process's stdio is the pty slave, and the shim copies between the FIFOs and
// the master it receives on the console socket.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { InvalidArgumentError, VkernelError } from '../../runtime/errors';
import { BinaryLogger } from './binary';
import { ConsoleCopy, ConsoleSocket } from './console';
import { closeFd, writeSocket } from './fds';
import { StdinFifo } from './stdin';
import { parseStdio, type StdioRequest } from './uri';

const { O_RDONLY, O_WRONLY, O_NONBLOCK, O_APPEND, O_CREAT } = fs.constants;

export type ChildStdio = 'ignore' | number;

export interface ProcessIOOptions {
  containerId: string;
  namespace: string;
}

export interface ProcessIO {
  /** fds 0..2 for the process (vkinit passes them on). */
  readonly stdio: [ChildStdio, ChildStdio, ChildStdio];
  /** Terminal mode: the console socket path for vkinit. */
  readonly consoleSocket: string | undefined;
  readonly terminal: boolean;
  /** The process exists: drop our copies of its fds; terminal: take the master, start copying. */
  attach(): Promise<void>;
  /** CloseIO(stdin). */
  closeStdin(): void;
  /** ResizePty; a no-op without a terminal. */
  resize(width: number, height: number): void;
  /** Waits up to drainMs for output copying (terminal, logger) to finish, then closes everything. Idempotent. */
  close(drainMs: number): Promise<void>;
}

/** A FIFO output: the fd the process writes, plus our read end that keeps the FIFO alive. */
class FifoOutput {
  readonly keepReader: number;
  writer: number | undefined;

  constructor(file: string) {
    this.keepReader = fs.openSync(file, O_RDONLY | O_NONBLOCK);
    try {
      this.writer = fs.openSync(file, O_WRONLY);
    } catch (err) {
      closeFd(this.keepReader);
      throw err;
    }
  }

  release(): void {
    closeFd(this.writer);
    this.writer = undefined;
  }

  close(): void {
    this.release();
    closeFd(this.keepReader);
  }
}

class ShimProcessIO implements ProcessIO {
  stdio: [ChildStdio, ChildStdio, ChildStdio] = ['ignore', 'ignore', 'ignore'];
  consoleSocket: string | undefined;
  readonly terminal: boolean;
  stdin: StdinFifo | undefined;
  fifos: FifoOutput[] = [];
  fileFd: number | undefined;
  logger: BinaryLogger | undefined;
  console: ConsoleSocket | undefined;
  copy: ConsoleCopy | undefined;
  /** Terminal mode: where the master's output goes. */
  sink: Writable | undefined;
  #closing: Promise<void> | undefined;

  constructor(terminal: boolean) {
    this.terminal = terminal;
  }

  async attach(): Promise<void> {
    // In terminal mode these are already empty: the copy owns its ends.
    this.stdin?.releaseChildFd();
    for (const f of this.fifos) f.release();
    closeFd(this.fileFd);
    this.fileFd = undefined;
    this.logger?.releaseChildFds();
    if (this.console) {
      const master = await this.console.receiveMaster();
      this.console = undefined;
      this.copy = new ConsoleCopy(master, this.sink, this.stdin?.reader);
    }
  }

  closeStdin(): void {
    this.stdin?.closeWriter();
  }

  resize(width: number, height: number): void {
    this.copy?.resize(width, height);
  }

  close(drainMs: number): Promise<void> {
    this.#closing ??= this.#close(drainMs);
    return this.#closing;
  }

  async #close(drainMs: number): Promise<void> {
    this.console?.close();
    if (this.copy) {
      await within(this.copy.done(), drainMs);
      this.copy.close();
    }
    this.sink?.destroy();
    this.stdin?.close();
    for (const f of this.fifos) f.close();
    closeFd(this.fileFd);
    this.fileFd = undefined;
    await this.logger?.close(drainMs);
  }
}

function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

/** Opens everything the request names; on failure closes what it opened and throws. */
export async function openProcessIO(req: StdioRequest, opts: ProcessIOOptions): Promise<ProcessIO> {
  const spec = parseStdio(req);
  const io = new ShimProcessIO(spec.terminal);
  try {
    if (spec.stdin) {
      io.stdin = StdinFifo.open(spec.stdin, spec.terminal ? 'copy' : 'direct');
      if (!spec.terminal) io.stdio[0] = io.stdin.childFd!;
    }
    const out = spec.output;
    if (out.kind === 'fifo') {
      if (out.stdout) {
        const f = new FifoOutput(out.stdout);
        io.fifos.push(f);
        if (spec.terminal) {
          io.sink = writeSocket(f.writer!);
          f.writer = undefined; // the socket owns it now
        } else io.stdio[1] = f.writer!;
      }
      if (out.stderr && !spec.terminal) {
        const f = new FifoOutput(out.stderr);
        io.fifos.push(f);
        io.stdio[2] = f.writer!;
      }
    } else if (out.kind === 'file') {
      fs.mkdirSync(path.dirname(out.path), { recursive: true });
      const fd = fs.openSync(out.path, O_WRONLY | O_APPEND | O_CREAT, 0o644);
      if (spec.terminal) io.sink = fs.createWriteStream('', { fd });
      else {
        io.fileFd = fd;
        io.stdio[1] = io.stdio[2] = fd;
      }
    } else if (out.kind === 'binary') {
      io.logger = await BinaryLogger.start({ path: out.path, args: out.args, containerId: opts.containerId, namespace: opts.namespace });
      if (spec.terminal) {
        io.sink = writeSocket(io.logger.takeStdout());
        io.logger.releaseChildFds(); // stderr: nothing will write it, the logger sees EOF
      } else {
        io.stdio[1] = io.logger.stdoutFd;
        io.stdio[2] = io.logger.stderrFd;
      }
    }
    if (spec.terminal) {
      io.console = ConsoleSocket.listen();
      io.consoleSocket = io.console.path;
    }
    return io;
  } catch (err) {
    await io.close(0);
    if (err instanceof VkernelError) throw err;
    throw new InvalidArgumentError(`stdio: ${(err as Error).message}`, 'stdio', { cause: err });
  }
}
