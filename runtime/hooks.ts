// Hooks that run in the runtime's namespace (prestart, createRuntime, poststart, poststop).
// createContainer and startContainer run inside the container and are done by vkinit.
import { spawn } from 'node:child_process';
import { InternalError } from './errors';
import type { Hook, Hooks, OciState } from './spec/types';

export type HookStage = keyof Hooks;

export async function runHook(hook: Hook, stage: HookStage, index: number, state: OciState): Promise<void> {
  const [argv0, ...rest] = hook.args && hook.args.length > 0 ? hook.args : [hook.path];
  const what = `${stage} hook #${index} (${hook.path})`;
  await new Promise<void>((resolve, reject) => {
    let child;
    try {
      child = spawn(hook.path, rest, {
        argv0,
        env: Object.fromEntries((hook.env ?? []).map((kv) => splitEnv(kv))),
        // runc runs runtime-namespace hooks in the bundle directory; hooks rely on it.
        cwd: state.bundle,
        stdio: ['pipe', 'inherit', 'inherit'],
      });
    } catch (err) {
      reject(new InternalError(`${what}: ${(err as Error).message}`));
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    if (hook.timeout && hook.timeout > 0) {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new InternalError(`${what}: timed out after ${hook.timeout}s`));
      }, hook.timeout * 1000);
    }
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new InternalError(`${what}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new InternalError(`${what}: ${signal ? `killed by ${signal}` : `exit status ${code}`}`));
    });
    // A hook that does not read its stdin must not fail us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(state));
  });
}

/** Runs a stage's hooks in order; the first failure stops the stage and is thrown. */
export async function runHooks(hooks: Hooks | undefined, stage: HookStage, state: OciState): Promise<void> {
  const list = hooks?.[stage] ?? [];
  for (let i = 0; i < list.length; i++) await runHook(list[i], stage, i, state);
}

/** poststart and poststop failures are warnings by the spec: run all, report each. */
export async function runHooksWarnOnly(
  hooks: Hooks | undefined,
  stage: HookStage,
  state: OciState,
  warn: (msg: string) => void,
): Promise<void> {
  const list = hooks?.[stage] ?? [];
  for (let i = 0; i < list.length; i++) {
    try {
      await runHook(list[i], stage, i, state);
    } catch (err) {
      warn((err as Error).message);
    }
  }
}

function splitEnv(kv: string): [string, string] {
  const eq = kv.indexOf('=');
  return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
}
