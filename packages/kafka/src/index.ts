export { PublishError, type MessagePublisher, type OutboundMessage, type PublishedPosition, type PublishFailureKind } from './publisher.js';
export { acknowledgedPositions, type AcknowledgementCheck, type PartitionAcknowledgement, type SentMessage } from './acknowledged-positions.js';
export { KafkaPublisher, type KafkaPublisherOptions } from './kafkajs-publisher.js';
export { InstrumentedPublisher, type InstrumentedPublisherOptions } from './instrumented-publisher.js';
export { createTopicsAndWait, retryWhileTopicUnknown } from './create-topics.js';
export { kafkajsPatchRevision } from './kafkajs-patch.js';
