export { PublishError, type MessagePublisher, type OutboundMessage, type PublishFailureKind } from './publisher.js';
export { KafkaPublisher, type KafkaPublisherOptions } from './kafkajs-publisher.js';
export { InstrumentedPublisher, type InstrumentedPublisherOptions } from './instrumented-publisher.js';
export { createTopicsAndWait, retryWhileTopicUnknown } from './create-topics.js';
export { kafkajsPatchRevision } from './kafkajs-patch.js';
