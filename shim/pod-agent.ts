// The vkernel syscall supervisor of one shim daemon (issue: "runs inside the shim for the
// containers that shim serves"): one `vkagent serve` for every container of the daemon's
// group (a pod), instead of one per container. Blast radius: the pod; no host-wide daemon.
// It is the daemon's child and dies with it (--die-with-parent: after a kill -9 of the
// daemon, containerd cleans up the pod's containers and nothing else would stop the agent).
// Started on the first Create that wants it; stopped when the daemon closes. If someone
// kills it, the next Create starts a new one (running containers' calls then fail open /
// ENOSYS exactly as with a killed per-container agent: docs/vkernel-syscalls.md).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { agentPids, startAgent, stopAgent, type SharedAgent } from '../runtime/vkernel/syscalls';
import { sha256Hex } from '../runtime/hash';

export class PodAgent {
  readonly dir: string;
  #socket: Promise<SharedAgent> | undefined;
  #closed = false;

  /** `stateRoot`: the daemon's runtime root; the agent's files go to a dot dir in it (not a container). */
  constructor(
    stateRoot: string,
    groupId: string,
    private readonly log: { info(m: string): void; warn(m: string): void },
  ) {
    const h = sha256Hex(groupId).slice(0, 12);
    this.dir = path.join(stateRoot, `.vkagent-${h}`);
  }

  /** The agent's socket and dir, starting (or restarting) the agent when none is alive. */
  readonly socket = (): Promise<SharedAgent> => {
    // A Create racing the group's end must not start an agent nobody would stop (a daemon
    // that goes back to the pool serves its next group with a new PodAgent).
    if (this.#closed) return Promise.reject(new Error('the shim is closing this pod'));
    if (this.#socket && agentPids(this.dir).length === 0) {
      this.log.warn(`vkernel agent of this pod (${this.dir}) is gone, starting a new one`);
      this.#socket = undefined;
    }
    this.#socket ??= startAgent(this.dir, { dieWithParent: true }).then(
      (a) => {
        this.log.info(`vkernel agent for this pod: pid ${a.pid}, socket ${a.socket}`);
        return { socket: a.socket, dir: this.dir };
      },
      (err: unknown) => {
        this.#socket = undefined;
        throw err;
      },
    );
    return this.#socket;
  };

  async close(): Promise<void> {
    const starting = this.#socket;
    this.#socket = undefined;
    this.#closed = true;
    // An agent still starting would otherwise write its pidfile after stopAgent looked, and
    // outlive the group (a daemon that goes back to the pool does not die, so neither would
    // the agent's --die-with-parent).
    await starting?.catch(() => undefined);
    // root: we are a subreaper, so a worker or standby whose keeper died is our child.
    await stopAgent(this.dir, { root: process.pid });
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
