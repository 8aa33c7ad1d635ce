// The JSON-valued Anys of the task API: ExecProcessRequest.spec (an OCI process) and
// UpdateTaskRequest.resources (OCI LinuxResources). Anything malformed is InvalidArgument.
import { InvalidArgumentError, type LinuxResources, type Process } from '../../runtime';
import { validateProcess } from '../../runtime/spec/validate';
import type { Any, ProtoInput } from '../proto';

export const PROCESS_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';
export const RESOURCES_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources';

function jsonAny(any: ProtoInput<Any> | null | undefined, typeUrl: string, field: string): unknown {
  if (!any) throw new InvalidArgumentError(`${field}: missing`, field);
  if (any.type_url !== typeUrl) {
    throw new InvalidArgumentError(`${field}: expected type_url ${typeUrl} (got ${JSON.stringify(any.type_url ?? '')})`, field);
  }
  try {
    return JSON.parse(Buffer.from(any.value ?? []).toString('utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`${field}: value is not JSON: ${(err as Error).message}`, field);
  }
}

/** The OCI process of an Exec, validated like a config.json process. */
export function decodeProcess(any: ProtoInput<Any> | null | undefined): Process {
  return validateProcess(jsonAny(any, PROCESS_TYPE_URL, 'spec'), 'spec');
}

export function decodeResources(any: ProtoInput<Any> | null | undefined): LinuxResources {
  const v = jsonAny(any, RESOURCES_TYPE_URL, 'resources');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidArgumentError('resources: must be a JSON object', 'resources');
  return v as LinuxResources;
}
