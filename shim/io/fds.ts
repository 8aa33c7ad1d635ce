// Raw fds and the Node streams over them. FIFOs wrap with net.Socket({ fd }) (libuv treats
// them as pipes: epoll, non-blocking on our own open file description). A pty master is a
// character device, which net refuses and tty.ReadStream handles with blocking writes, so
// it is opened as a libuv pipe handle directly (what node-pty does): same epoll loop, no
// thread-pool reads, no blocking.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { InternalError } from '../../runtime/errors';

export function closeFd(fd: number | undefined): void {
  if (fd === undefined || fd < 0) return;
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

/** A read-only stream over a FIFO's read end. */
export function readSocket(fd: number): net.Socket {
  return new net.Socket({ fd, readable: true, writable: false });
}

/** A write-only stream over a FIFO's (or pipe's) write end. */
export function writeSocket(fd: number): net.Socket {
  return new net.Socket({ fd, readable: false, writable: true });
}

interface PipeWrap {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

/** A duplex stream over any pollable fd (the pty master). The socket owns the fd. */
export function duplexOverFd(fd: number): net.Socket {
  const { Pipe, constants } = (process as unknown as { binding(name: string): PipeWrap }).binding('pipe_wrap');
  const handle = new Pipe(constants.SOCKET);
  const err = handle.open(fd);
  if (err) throw new InternalError(`cannot wrap fd ${fd} as a stream (libuv error ${err})`);
  return new net.Socket({ handle } as net.SocketConstructorOpts);
}
