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
  await releaseExecFifo(container);
  trace('exec fifo released');
  await runHooksWarnOnly(container.spec().hooks, 'poststart', container.ociState('running'), (m) => ctx.log.warn(m));
  return container;
}

/**
 * Opening the FIFO for reading (non-blocking, so a dead init cannot hang us) unblocks the
 * init's open for writing; it then writes one byte and goes on to execve. We poll for that
 * byte while checking the init is still alive.
 */
async function releaseExecFifo(container: Container): Promise<void> {
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
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(fd, buf, 0, 1, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (n === 1) break;
      if (!container.initAlive()) throw new FailedPreconditionError('cannot start a container that has stopped');
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(fifo, { force: true });
}
