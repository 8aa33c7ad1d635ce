// A process's stdin FIFO. The client opened (or is opening) the write side before Create.
// We always hold a writer of our own, so the process does not see EOF before the client
// has even connected; CloseIO(stdin) drops it, and EOF then follows when the client closes.
//   direct: the process gets a blocking read fd of its own (no copying in the shim)
//   copy:   we read (terminal mode: into the pty master)
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { closeFd, readSocket } from './fds';

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;

export class StdinFifo {
  #keepWriter: number | undefined;
  #childFd: number | undefined;
  readonly reader: net.Socket | undefined;

  private constructor(keepWriter: number, childFd: number | undefined, reader: net.Socket | undefined) {
    this.#keepWriter = keepWriter;
    this.#childFd = childFd;
    this.reader = reader;
  }

  static open(file: string, mode: 'direct' | 'copy'): StdinFifo {
    // A non-blocking read open never waits; with it open, the write open cannot fail ENXIO,
    // and with our writer open a blocking read open returns at once.
    const probe = fs.openSync(file, O_RDONLY | O_NONBLOCK);
    let keep: number | undefined;
    try {
      keep = fs.openSync(file, O_WRONLY | O_NONBLOCK);
      if (mode === 'copy') return new StdinFifo(keep, undefined, readSocket(probe));
      const child = fs.openSync(file, O_RDONLY);
      closeFd(probe);
      return new StdinFifo(keep, child, undefined);
    } catch (err) {
      closeFd(probe);
      closeFd(keep);
      throw err;
    }
  }

  /** The fd the process reads (direct mode). */
  get childFd(): number | undefined {
    return this.#childFd;
  }

  /** The process has its own copy now. */
  releaseChildFd(): void {
    closeFd(this.#childFd);
    this.#childFd = undefined;
  }

  /** CloseIO(stdin): EOF reaches the process once the client closes its side too. */
  closeWriter(): void {
    closeFd(this.#keepWriter);
    this.#keepWriter = undefined;
  }

  close(): void {
    this.releaseChildFd();
    this.closeWriter();
    this.reader?.destroy();
  }
}
