// Terminal processes: vkinit creates the pty inside the container and sends the master over
// a console socket we listen on (runc's --console-socket). We copy stdin FIFO → master and
// master → stdout, and ResizePty sets the window size on the master. The copy ends when
// the last holder of the slave closes it (reads then fail with EIO, which is the normal end).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as net from 'node:net';
import type { Writable } from 'node:stream';
import { InternalError } from '../../runtime/errors';
import { native } from '../../runtime/native';
import { closeFd, duplexOverFd } from './fds';

/** A listening console socket in a private temp dir. */
export class ConsoleSocket {
  #listenFd: number | undefined;

  private constructor(
    readonly dir: string,
    readonly path: string,
    listenFd: number,
  ) {
    this.#listenFd = listenFd;
  }

  static listen(): ConsoleSocket {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vkshim-pty-'));
    const file = path.join(dir, 'pty.sock');
    try {
      return new ConsoleSocket(dir, file, native().listenUnix(file));
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * The pty master vkinit sent. Called only after create/exec returned, so the connection
   * and its fd are already queued and the thread-pool wait is short.
   */
  async receiveMaster(timeoutMs = 10_000): Promise<number> {
    if (this.#listenFd === undefined) throw new InternalError('console socket already closed');
    try {
      const { fd } = await native().acceptRecvFd(this.#listenFd, timeoutMs);
      return fd;
    } catch (err) {
      throw new InternalError(`receive the pty master: ${(err as Error).message}`, { cause: err });
    } finally {
      this.close();
    }
  }

  close(): void {
    closeFd(this.#listenFd);
    this.#listenFd = undefined;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The master side of a running terminal process and its two copy loops. */
export class ConsoleCopy {
  readonly #master: net.Socket;
  readonly #done: Promise<void>;
  #closed = false;

  constructor(
    readonly masterFd: number,
    output: Writable | undefined,
    input: net.Socket | undefined,
  ) {
    this.#master = duplexOverFd(masterFd);
    this.#done = new Promise<void>((resolve) => {
      const finish = (): void => {
        // The socket closes the fd once it ends: never ioctl a number that may be reused.
        this.#closed = true;
        if (output && !output.destroyed) output.end();
        resolve();
      };
      // EIO once the slave side is gone: the normal end of a terminal's output.
      this.#master.on('error', () => finish());
      this.#master.on('end', () => finish());
      this.#master.on('close', () => finish());
    });
    if (output) {
      output.on('error', () => undefined); // the client went away: keep draining the master
      this.#master.on('data', (chunk: Buffer) => {
        if (!output.destroyed && !output.write(chunk)) {
          this.#master.pause();
          output.once('drain', () => this.#master.resume());
        }
      });
    } else {
      this.#master.resume(); // nobody wants the output, but the pty must not fill up
    }
    if (input) {
      input.on('error', () => undefined);
      // EOF on stdin stops the copy only: closing the master would hang up the terminal.
      input.on('data', (chunk: Buffer) => {
        if (!this.#closed && !this.#master.write(chunk)) {
          input.pause();
          this.#master.once('drain', () => input.resume());
        }
      });
    }
  }

  resize(width: number, height: number): void {
    if (this.#closed) return;
    native().setWinsize(this.masterFd, height, width);
  }

  /** Resolves when the output copy has ended. */
  done(): Promise<void> {
    return this.#done;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#master.destroy();
  }
}
