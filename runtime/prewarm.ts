// A long-lived caller (a warm shim daemon waiting in the pool) runs the create path's pure
// JavaScript once before its first real container: V8 parses and compiles each function on
// its first call, and the first container of a fresh daemon paid that on containerd's
// critical path (~7 ms for the seccomp profile alone). Read-only: a default spec validated
// against "/", the default seccomp profile taken to its compiler input (no compile, no
// cache key, no cache write), an init plan built from that spec (nothing launched), the view policy
// parser, and libuv's thread pool.
import * as fs from 'node:fs';
import { defaultSpec } from './spec/defaults';
import type { Spec } from './spec/types';
import { validateSpec } from './spec/validate';
import { defaultSeccompProfile } from './seccomp/default-profile';
import { validateSeccomp } from './seccomp/validate';
import { buildPlan, encodePlan as encodeSeccompPlan } from './seccomp/plan';
import { buildCreatePlan } from './init/from-spec';
import { encodePlan } from './init/plan';
import { parseViewPolicy } from './vkernel/policy';

/** Runs each step, ignoring failures (only an optimization); resolves with the steps that ran through. */
export async function prewarmCreatePath(): Promise<string[]> {
  const done: string[] = [];
  const step = (name: string, fn: () => unknown): void => {
    try {
      fn();
      done.push(name);
    } catch {
      // the real call will compile what this one did not reach
    }
  };
  const raw = { ...defaultSpec(), root: { path: '/', readonly: true } };
  let spec: Spec = raw;
  step('spec', () => (spec = validateSpec(JSON.parse(JSON.stringify(raw)), '/')));
  // Up to the plan text: its cache key is a SHA-256 (native code, nothing to warm), and
  // loading node:crypto would cost a waiting daemon ~2.4 MiB (runtime/hash.ts).
  step('seccomp', () => {
    const v = validateSeccomp(defaultSeccompProfile());
    if (v) encodeSeccompPlan(buildPlan(v));
  });
  step('plan', () =>
    encodePlan(
      buildCreatePlan(spec, {
        bundle: '/',
        execFifo: '/nonexistent/exec.fifo',
        cgroupProcs: [],
        noPivot: false,
        containerId: 'prewarm',
        preserveFds: 0,
        wait: false,
        capLastCap: 40,
      }),
    ),
  );
  step('policy', () => parseViewPolicy({ 'io.vkernel.view': 'on' }));
  // libuv starts its thread pool on the first asynchronous fs call (~5 ms here).
  await fs.promises.readFile('/proc/self/stat').then(() => done.push('threadpool'), () => undefined);
  return done;
}
