export { PublishError, type MessagePublisher, type OutboundMessage, type PublishFailureKind } from './publisher.js';
export { KafkaPublisher, type KafkaPublisherOptions } from './kafkajs-publisher.js';
