// Container statuses and the one table of which verb each status allows.
import { FailedPreconditionError } from '../errors';

export type Status = 'created' | 'running' | 'paused' | 'stopped';

export type Verb = 'start' | 'kill' | 'delete' | 'forceDelete' | 'exec' | 'pause' | 'resume' | 'update';

const ALLOWED: Record<Status, readonly Verb[]> = {
  created: ['start', 'kill', 'delete', 'forceDelete', 'exec', 'pause', 'update'],
  running: ['kill', 'forceDelete', 'exec', 'pause', 'update'],
  paused: ['kill', 'forceDelete', 'resume', 'update'],
  stopped: ['delete', 'forceDelete'],
};

export function can(status: Status, verb: Verb): boolean {
  return ALLOWED[status].includes(verb);
}

/** Throws runc's message for a verb the status does not allow. */
export function requireVerb(id: string, status: Status, verb: Verb): void {
  if (can(status, verb)) return;
  throw new FailedPreconditionError(refusal(id, status, verb));
}

function refusal(id: string, status: Status, verb: Verb): string {
  switch (verb) {
    case 'start':
      if (status === 'stopped') return 'cannot start a container that has stopped';
      if (status === 'running') return 'cannot start an already running container';
      return `cannot start a container in the ${status} state`;
    case 'delete':
      return `cannot delete container ${id} that is not stopped: ${status}`;
    case 'kill':
      return 'container not running';
    case 'exec':
      return 'cannot exec in a stopped container';
    case 'pause':
      return 'container not running';
    case 'resume':
      return 'container not paused';
    default:
      return `cannot ${verb} container ${id} in the ${status} state`;
  }
}
