import { Kafka, logLevel, type Consumer, type KafkaConfig } from 'kafkajs';
import { createTopicsAndWait, retryWhileTopicUnknown } from '@eventbus/kafka';
import { COMMIT_INTERVAL_MS, type BatchHandler, type ConsumerGroupClient, type InboundMessage, type TopicSubscriptionSpec } from './consumer-client.js';

/** Settings of the kafkajs consumer behind `ConsumerGroupClient`. */
export interface KafkajsConsumerOptions {
  brokers: string[];
  groupId: string;
  clientId: string;
  /** Partitions handled at the same time (kafkajs `partitionsConsumedConcurrently`). */
  concurrency: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /** Extra kafkajs client settings (ssl, sasl, ...). */
  kafka?: Partial<KafkaConfig>;
}

/**
 * The one place kafkajs' consumer is used. `eachBatch` (not `eachMessage`) because only
 * a batch handler can heartbeat while a long handler runs; offsets are resolved by the
 * caller one message at a time and committed every `COMMIT_INTERVAL_MS` during a batch as
 * well as after it, so a stop mid-batch redelivers only unfinished messages, and a crash or
 * rebalance mid-batch about a second of work at most.
 */
export class KafkajsConsumerClient implements ConsumerGroupClient {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;

  constructor(private readonly options: KafkajsConsumerOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      // kafkajs' default backoff grows to 30 s between reconnects, so a consumer resumed up to
      // ~30 s after a broker outage ended (fault matrix scenario 3); 5 s bounds that delay.
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 10 },
      ...options.kafka,
    });
  }

  async ensureTopics(topics: readonly string[], partitions: number): Promise<void> {
    if (topics.length === 0) return;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // Idempotent: topics that exist keep their partition count.
      await createTopicsAndWait(admin, topics.map((topic) => ({ topic, numPartitions: partitions })));
    } finally {
      await admin.disconnect();
    }
  }

  async start(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): Promise<void> {
    // The first join can still meet a topic another process created a moment ago (see
    // retryWhileTopicUnknown in @eventbus/kafka); start over with a fresh consumer until the broker knows it.
    await retryWhileTopicUnknown(async () => {
      try {
        await this.startOnce(subscriptions, eachBatch);
      } catch (error) {
        const consumer = this.consumer;
        this.consumer = undefined;
        await consumer?.disconnect().catch(() => undefined);
        throw error;
      }
    });
  }

  private async startOnce(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
      maxWaitTimeInMs: 100,
      // The consumer creates its topics itself (ensureTopics) with the relay's partition
      // count; a broker auto-created topic would silently get the broker default.
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    await consumer.connect();
    for (const s of subscriptions) await consumer.subscribe({ topics: s.topics, fromBeginning: s.fromBeginning });
    await consumer.run({
      partitionsConsumedConcurrently: this.options.concurrency,
      eachBatchAutoResolve: false,
      // What commitOffsetsIfNecessary() waits for; without an interval or threshold kafkajs
      // never commits there, only at the end of a batch. Resolved offsets only, as always.
      autoCommitInterval: COMMIT_INTERVAL_MS,
      eachBatch: async ({ batch, heartbeat, resolveOffset, commitOffsetsIfNecessary, isRunning, isStale, pause }) => {
        const messages: InboundMessage[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          timestamp: Number(m.timestamp),
          key: m.key,
          value: m.value,
          headers: m.headers ?? {},
        }));
        await eachBatch(messages, { heartbeat, resolveOffset, commitOffsetsIfNecessary: () => commitOffsetsIfNecessary(), isRunning, isStale, pause });
      },
    });
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    // disconnect() stops the runner (waiting for the batches in flight), commits the
    // resolved offsets and sends LeaveGroup, so partitions move at once, not after a session timeout.
    await consumer?.disconnect();
  }
}
