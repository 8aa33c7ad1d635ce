export {
  EventPublisher,
  RecordingSink,
  TtrpcEventTransport,
  EVENTS_SERVICE,
  type EventSink,
  type EventTransport,
  type PublisherOptions,
  type QueuedEvent,
} from './publisher';
export { Topic, TOPIC_TYPES, emit, type TopicName, type TopicEvent } from './topics';
