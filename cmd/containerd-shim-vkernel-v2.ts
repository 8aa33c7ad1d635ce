#!/usr/bin/env node
// The shim's cold path: what build/containerd-shim-vkernel-v2 (shim/launcher/launcher.c) execs
// when no manager answers. It runs the one implementation (shim/bootstrap/run.ts) in this
// process, prints exactly what it returns, and starts a manager for next time.
//
// Only what every action needs is imported up front; spawning (start) and the manager
// autostart (after answering start or delete) are loaded when used.
import * as fs from 'node:fs';
import * as tty from 'node:tty';
import type { DaemonLauncher } from '../shim/bootstrap/daemon-config';
import { pickShimEnv } from '../shim/bootstrap/flags';
import { runShim } from '../shim/bootstrap/run';
import type * as SpawnModule from '../shim/bootstrap/spawn';
import type * as AutostartModule from '../shim/manager/autostart';

/* eslint-disable @typescript-eslint/no-require-imports */
const launcher: DaemonLauncher = {
  launch: async (l) => (require('../shim/bootstrap/spawn') as typeof SpawnModule).spawnDirectDaemon(l),
};
const ensureManager = (): boolean => (require('../shim/manager/autostart') as typeof AutostartModule).ensureManager();
/* eslint-enable @typescript-eslint/no-require-imports */

function readStdin(): Buffer {
  if (tty.isatty(0)) return Buffer.alloc(0);
  try {
    return fs.readFileSync(0);
  } catch {
    return Buffer.alloc(0); // closed or unreadable: nothing came
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

function cwd(): string {
  try {
    return process.cwd();
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const reply = await runShim(
    {
      args: process.argv.slice(2),
      cwd: cwd(),
      env: pickShimEnv(process.env),
      stdin: readStdin(),
      containerdPid: process.ppid,
      startedAt: Date.now() - process.uptime() * 1000,
    },
    { launcher },
  );
  writeAll(1, reply.stdout);
  writeAll(2, reply.stderr);
  if (reply.action === 'start' || reply.action === 'delete') {
    try {
      ensureManager();
    } catch {
      // the next invocation is cold again; nothing else depends on it
    }
  }
  process.exit(reply.exitCode);
}

void main();
