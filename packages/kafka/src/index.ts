export {
  isTooLargeRefusal,
  PublishError,
  type MessagePublisher,
  type OutboundMessage,
  type PublishedPosition,
  type PublishFailureKind,
  type PublishRefusalReason,
} from './publisher.js';
export {
  acknowledgedPositions,
  positionsWhereAcknowledged,
  type AcknowledgementCheck,
  type PartitionAcknowledgement,
  type SentMessage,
} from './acknowledged-positions.js';
export { KafkaPublisher, type KafkaPublisherOptions } from './kafkajs-publisher.js';
export { InstrumentedPublisher, type InstrumentedPublisherOptions } from './instrumented-publisher.js';
export { createTopicsAndWait, retryWhileTopicUnknown } from './create-topics.js';
export { COPY_TOPIC_HEADROOM_BYTES, copyTopicLimit, warnAboutCopyTopicLimits } from './topic-limits.js';
export { KAFKAJS_PATCH_REVISION, kafkajsPatchRevision } from './kafkajs-patch.js';
export {
  COMMIT_INTERVAL_MS,
  type BatchControl,
  type BatchHandler,
  type ConsumerGroupClient,
  type ConsumerGroupClientFactory,
  type ConsumerGroupSettings,
  type CopyTopicSizing,
  type InboundMessage,
  type TopicSubscriptionSpec,
} from './consumer/consumer-client.js';
export { KafkajsConsumerClient, type KafkajsConsumerOptions } from './consumer/kafkajs-consumer.js';
export { kafkajsConnectionConfig, type KafkaConnectionOptions } from './connection-options.js';
export {
  ConsumerGroupLagReader,
  MAX_LISTED_GROUPS,
  type ConsumerGroupLagOptions,
  type GroupLag,
  type PartitionLag,
} from './consumer-group-lag.js';
export { TopicRangeReader, type TopicRangeReaderOptions, type PartitionRange, type RangeRecord, type CommittedOffset } from './topic-range-reader.js';
export { readRecordAt, DEFAULT_RECORD_READ_TIMEOUT_MS, READ_GROUP_PREFIX, type RecordPosition, type StoredRecord } from './record-at-offset.js';
