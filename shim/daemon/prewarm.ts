// What a warm daemon does before it checks in with the manager, so that the first container
// it serves does not pay for it on containerd's critical path. protobufjs generates each
// message type's encoder, decoder and object converters (new Function) the first time the
// type is used: ~35 ms for the types of one `ctr run --rm` (Create … Shutdown, ttrpc
// framing, the task events and their Forward), spread over the first Create, Start, Wait and
// Delete. Pure CPU with no side effects, done while the daemon waits in the pool.
import * as protobuf from 'protobufjs/light';
import { TOPIC_TYPES } from '../events/topics';
import { lookupType, methodTypes, type ProtoTypeName } from '../proto';

/** The task methods of every container's life (`ctr run`, CRI): the rest stay generated on first use. */
const LIFECYCLE_METHODS = ['Create', 'Connect', 'Start', 'State', 'Wait', 'Kill', 'Delete', 'Shutdown'];
/** Types used outside the task service's own methods: ttrpc framing and event forwarding. */
const OTHER_TYPES: ProtoTypeName[] = ['ttrpc.Request', 'ttrpc.Response', 'containerd.services.events.ttrpc.v1.ForwardRequest'];
/** The lifecycle's events (exec, pause and OOM events stay lazy). */
const EVENTS = ['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete'] as const;

/**
 * Generates the codecs of the types a container's lifecycle uses; returns how many types.
 * Only those: every generated codec stays resident (all 46 task/event types: +1.4 MiB RSS).
 */
export function prewarmCodecs(): number {
  const names = new Set<ProtoTypeName>(OTHER_TYPES);
  for (const m of LIFECYCLE_METHODS) {
    const t = methodTypes('containerd.task.v2.Task', m);
    names.add(t.requestType);
    names.add(t.responseType);
  }
  for (const e of EVENTS) names.add(TOPIC_TYPES[e] as ProtoTypeName);
  const seen = new Set<protobuf.Type>();
  for (const n of names) setupAll(lookupType(n), seen);
  return seen.size;
}

/** Type.setup() generates the type's codecs (what its first encode/decode would do); then its message fields'. */
function setupAll(t: protobuf.Type, seen: Set<protobuf.Type>): void {
  if (seen.has(t)) return;
  seen.add(t);
  t.setup();
  for (const f of t.fieldsArray) if (f.resolvedType instanceof protobuf.Type) setupAll(f.resolvedType, seen);
}
