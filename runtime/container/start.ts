// `start`: release the init blocked on the exec FIFO, then run poststart hooks.
import * as fs from 'node:fs';
import type { RuntimeContext } from '../context';
import { trace } from '../trace';
import { FailedPreconditionError } from '../errors';
import { runHooksWarnOnly } from '../hooks';
import { Container } from './container';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function start(ctx: RuntimeContext, id: string): Promise<Container> {
  const container = Container.load(ctx.store, id, ctx.sys);
  await container.require('start');
  // With startContainer or poststart hooks, wait for the workload's execve: a failed
  // startContainer hook fails start, and poststart must follow the workload's start.
  const hooks = container.spec().hooks;
  await releaseExecFifo(container, !!(hooks?.startContainer?.length || hooks?.poststart?.length));
  trace('exec fifo released');
  await runHooksWarnOnly(hooks, 'poststart', container.ociState('running'), (m) => ctx.log.warn(m));
  return container;
}

/**
 * Opening the FIFO for reading (non-blocking, so a dead init cannot hang us) unblocks the
 * init's open for writing; it then writes one byte and goes on to execve. We poll for that
 * byte while checking the init is still alive.
 */
async function releaseExecFifo(container: Container, waitForExec: boolean): Promise<void> {
  const fifo = container.store.execFifo(container.id);
  let fd: number;
  try {
    fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FailedPreconditionError('cannot start an already running container');
    throw err;
  }
  try {
    const buf = Buffer.alloc(1);
    let delay = 1;
    let released = false;
    for (;;) {
      let n = -1; // -1: nothing yet (EAGAIN); 0: EOF, no writer
      try {
        n = fs.readSync(fd, buf, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n === 1 && buf[0] === 0x68 /* h */) {
        throw new FailedPreconditionError('container init: a startContainer hook failed; the workload was not started');
      }
      // EOF after the 0: the init closed the FIFO by execve (close-on-exec), the workload runs.
      if (n === 0 && released) break;
      if (n === 1) {
        released = true;
        if (!waitForExec) break;
        continue;
      }
      if (!container.initAlive()) {
        if (released) break; // exec'd and already exited
        // A fast workload may write its byte, exec and exit between our read and this
        // check: one more read tells a start that happened from a container that died.
        const last = readOnce(fd, buf);
        if (last === 1 && buf[0] !== 0x68 /* h */) break;
        throw new FailedPreconditionError('cannot start a container that has stopped');
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(fifo, { force: true });
}

function readOnce(fd: number, buf: Buffer): number {
  try {
    return fs.readSync(fd, buf, 0, 1, null);
  } catch {
    return -1;
  }
}
