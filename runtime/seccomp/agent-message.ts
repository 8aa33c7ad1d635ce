// The message a seccomp agent receives on linux.seccomp.listenerPath (runtime-spec
// config-linux.md "The Container Process State"): this JSON as the regular payload of
// one AF_UNIX SOCK_STREAM connection, with the seccomp listener fd in the SCM_RIGHTS of
// the first sendmsg(2); fds[i] names the i-th passed fd. One message per connection, then
// the runtime closes it.
import { OCI_VERSION } from '../paths';
import { OciState } from '../spec/types';

/** The name of the seccomp listener fd in `fds` (runtime-spec SeccompFdName). */
export const SECCOMP_FD_NAME = 'seccompFd';

/** runtime-spec ContainerProcessState. */
export interface ContainerProcessState {
  ociVersion: string;
  fds?: string[];
  /** The container process as seen by the runtime (host pid namespace). */
  pid: number;
  metadata?: string;
  state: OciState;
}

/**
 * The ContainerProcessState JSON for the agent: `state` is the container's OCI state
 * (status "creating" when sent during create, as runc does), `pid` the process that
 * loaded the filter, `metadata` linux.seccomp.listenerMetadata (omitted when empty).
 */
export function agentMessage(state: OciState, pid: number, metadata?: string): string {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new RangeError(`agentMessage: bad pid ${pid}`);
  const msg: ContainerProcessState = {
    ociVersion: OCI_VERSION,
    fds: [SECCOMP_FD_NAME],
    pid,
    ...(metadata ? { metadata } : {}),
    state,
  };
  return JSON.stringify(msg);
}
