import { createTopicsAndWait } from '@eventbus/kafka';
import { Kafka, logLevel, type Consumer, type KafkaConfig } from 'kafkajs';
import { uniqueName, waitFor } from './wait.js';

/** A message as a test sees it. */
export interface CollectedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  receivedAt: number;
}

/**
 * A plain kafkajs consumer that records everything on some topics: how tests observe what
 * the relay published, independently of the project's own consumer library.
 */
export class KafkaCollector {
  readonly messages: CollectedMessage[] = [];
  private consumer: Consumer | undefined;

  constructor(
    private readonly brokers: string[],
    private readonly topics: Array<string | RegExp>,
    /** TLS/SASL for a secured broker (`PrivateBroker.clientSecurity()`). */
    private readonly security: Pick<KafkaConfig, 'ssl' | 'sasl'> = {},
  ) {}

  async start(): Promise<this> {
    const kafka = new Kafka({ brokers: this.brokers, clientId: 'test-collector', logLevel: logLevel.NOTHING, ...this.security });
    this.consumer = kafka.consumer({ groupId: uniqueName('collector-'), maxWaitTimeInMs: 50, allowAutoTopicCreation: true });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: this.topics, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = v.toString();
        this.messages.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value?.toString() ?? null,
          headers,
          receivedAt: Date.now(),
        });
      },
    });
    return this;
  }

  /** Distinct event ids (ce_id) received so far. */
  eventIds(): Set<string> {
    return new Set(this.messages.map((m) => m.headers.ce_id!).filter(Boolean));
  }

  async waitForEvents(count: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => this.eventIds().size >= count, { timeoutMs, message: () => `${count} distinct events (have ${this.eventIds().size})` });
  }

  async stop(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect();
  }
}

/** Creates topics up front so a collector subscribed from the beginning sees every message. */
export async function createTopics(
  brokers: string[],
  topics: Array<{ topic: string; numPartitions?: number; configEntries?: Array<{ name: string; value: string }> }>,
  security: Pick<KafkaConfig, 'ssl' | 'sasl'> = {},
): Promise<void> {
  const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING, ...security }).admin();
  await admin.connect();
  try {
    await createTopicsAndWait(
      admin,
      topics.map((t) => ({ numPartitions: 3, ...t })),
    );
  } finally {
    await admin.disconnect();
  }
}
