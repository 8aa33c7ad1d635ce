// Event topics (containerd runtime/events.go) and the message each carries.
import type { ProtoInput, ProtoTypeName, ProtoTypes } from '../proto';
import type { EventSink } from './publisher';

export const Topic = {
  create: '/tasks/create',
  start: '/tasks/start',
  exit: '/tasks/exit',
  delete: '/tasks/delete',
  oom: '/tasks/oom',
  execAdded: '/tasks/exec-added',
  execStarted: '/tasks/exec-started',
  paused: '/tasks/paused',
  resumed: '/tasks/resumed',
} as const;

export type TopicName = keyof typeof Topic;

export const TOPIC_TYPES = {
  '/tasks/create': 'containerd.events.TaskCreate',
  '/tasks/start': 'containerd.events.TaskStart',
  '/tasks/exit': 'containerd.events.TaskExit',
  '/tasks/delete': 'containerd.events.TaskDelete',
  '/tasks/oom': 'containerd.events.TaskOOM',
  '/tasks/exec-added': 'containerd.events.TaskExecAdded',
  '/tasks/exec-started': 'containerd.events.TaskExecStarted',
  '/tasks/paused': 'containerd.events.TaskPaused',
  '/tasks/resumed': 'containerd.events.TaskResumed',
} as const satisfies Record<string, ProtoTypeName>;

type TopicPath = keyof typeof TOPIC_TYPES;
export type TopicEvent<T extends TopicPath> = ProtoInput<ProtoTypes[(typeof TOPIC_TYPES)[T]]>;

/** Publishes `event` on `topic` with the message type that topic carries. */
export function emit<T extends TopicPath>(sink: EventSink, topic: T, event: TopicEvent<T>): void {
  sink.publish(topic, TOPIC_TYPES[topic], event as never);
}
