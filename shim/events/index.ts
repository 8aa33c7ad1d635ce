export { EventPublisher, RecordingSink, EVENTS_SERVICE, type EventSink, type PublisherOptions } from './publisher';
export { Topic, TOPIC_TYPES, emit, type TopicName, type TopicEvent } from './topics';
