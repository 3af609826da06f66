import { Kafka, logLevel, type Consumer, type KafkaConfig } from 'kafkajs';
import type { BatchHandler, ConsumerGroupClient, InboundMessage, TopicSubscriptionSpec } from './consumer-client.js';

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
 * caller one message at a time, so a stop or crash mid-batch redelivers only unfinished ones.
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
      ...options.kafka,
    });
  }

  async ensureTopics(topics: readonly string[], partitions: number): Promise<void> {
    if (topics.length === 0) return;
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // createTopics is idempotent: topics that exist keep their partition count.
      // CreateTopics can return before the broker serves the new topics' metadata (its own
      // wait for leaders can then fail), and a consumer joining in that moment fails with
      // UNKNOWN_TOPIC_OR_PARTITION: create, then wait until every partition has a leader.
      await retryWhileTopicUnknown(async () => {
        await admin.createTopics({ waitForLeaders: true, topics: topics.map((topic) => ({ topic, numPartitions: partitions })) });
        const { topics: described } = await admin.fetchTopicMetadata({ topics: [...topics] });
        const leaderless = described.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0));
        if (leaderless.length > 0) throw Object.assign(new Error(`no leader yet for ${leaderless.map((t) => t.name).join(', ')}`), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
      });
    } finally {
      await admin.disconnect();
    }
  }

  async start(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): Promise<void> {
    // The first join can still meet a topic another process created a moment ago (see
    // retryWhileTopicUnknown); start over with a fresh consumer until the broker knows it.
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
      eachBatch: async ({ batch, heartbeat, resolveOffset, isRunning, isStale, pause }) => {
        const messages: InboundMessage[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          timestamp: Number(m.timestamp),
          key: m.key,
          value: m.value,
          headers: m.headers ?? {},
        }));
        await eachBatch(messages, { heartbeat, resolveOffset, isRunning, isStale, pause });
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

/**
 * Runs `attempt` again while it fails with UNKNOWN_TOPIC_OR_PARTITION ("This server does
 * not host this topic-partition"), with backoff, for up to `timeoutMs`. Right after
 * CreateTopics (ours or another process's) the broker can answer that for a moment, and
 * kafkajs does not retry it inside subscribe() or the first join, so a worker started
 * together with its topics failed at boot (seen with the demo's consumers and the DLQ
 * mirror starting at once on a new cluster). Any other error is thrown at once.
 */
async function retryWhileTopicUnknown(attempt: () => Promise<void>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await attempt();
    } catch (error) {
      const type = (error as { type?: string }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' || Date.now() + delay > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
