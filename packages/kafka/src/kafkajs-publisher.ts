import { Kafka, logLevel, type Admin, type Producer, type KafkaConfig, type Message } from 'kafkajs';
import { createTopicsAndWait } from './create-topics.js';
import { PublishError, type MessagePublisher, type OutboundMessage } from './publisher.js';

export interface KafkaPublisherOptions {
  brokers: string[];
  clientId?: string;
  /** Create topics on first use (admin CreateTopics) instead of relying on broker auto-creation. Default true. */
  createTopics?: boolean;
  /** Partitions of topics this publisher creates. Default 12. */
  topicPartitions?: number;
  /** Replication factor of created topics; -1 = the broker's default. Default -1. */
  topicReplicationFactor?: number;
  /**
   * Time one publish may take before it counts as a transient failure: kafkajs retries,
   * replacing a failed producer and creating topics included. Default 15000 ms.
   */
  publishTimeoutMs?: number;
  /** Extra kafkajs client settings (ssl, sasl, ...). */
  kafka?: Partial<KafkaConfig>;
}

/**
 * Error types that belong to the messages, not the broker: the same bytes sent again will
 * be refused again. Everything else (connection loss, leader elections, timeouts, retries
 * exhausted) is transient.
 */
const REJECTED_TYPES = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_REQUIRED_ACKS',
  'UNSUPPORTED_FOR_MESSAGE_FORMAT',
  'POLICY_VIOLATION',
]);

/** The one place kafkajs' producer is used. */
export class KafkaPublisher implements MessagePublisher {
  private readonly kafka: Kafka;
  private producer: Producer | undefined;
  private adminReady: Promise<Admin> | undefined;
  private readonly knownTopics = new Set<string>();
  /** Bumped by each reconnect; a transient failure records the generation it happened on. */
  private generation = 0;
  private failedGeneration = -1;
  private reconnecting: Promise<void> | undefined;

  constructor(private readonly options: KafkaPublisherOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'eventbus',
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      // Bounded: a broker outage must surface as a transient failure the relay backs off on,
      // not as a send that hangs while rows stay locked.
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      ...options.kafka,
    });
  }

  async connect(): Promise<void> {
    // Not idempotent (the kafkajs idempotent producer has known OUT_OF_ORDER_SEQUENCE_NUMBER
    // failures after broker outages); order instead comes from one request in flight, and
    // the rare duplicate from a retried request carries the same ce_id, so it is detectable.
    this.producer = this.kafka.producer({ allowAutoTopicCreation: true, maxInFlightRequests: 1, idempotent: false });
    await this.producer.connect();
  }

  /**
   * Safe to call while other calls are in flight (the relay's lanes share one publisher).
   * A transient failure marks the connection it happened on; the next call replaces the
   * producer once, and a send that failed only because another call replaced the producer
   * under it does not ask for yet another replacement.
   */
  async publish(messages: readonly OutboundMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const producer = this.producer;
    if (!producer) throw new PublishError('transient', 'publisher is not connected');
    let generation = this.generation;
    const timeoutMs = this.options.publishTimeoutMs ?? 15_000;
    const deadline = Date.now() + timeoutMs;
    const attempt = async () => {
      if (this.failedGeneration === this.generation) await this.reconnect();
      generation = this.generation;
      const byTopic = new Map<string, Message[]>();
      for (const m of messages) {
        let list = byTopic.get(m.topic);
        if (!list) byTopic.set(m.topic, (list = []));
        list.push({ key: m.key, value: m.value, headers: m.headers });
      }
      if (this.options.createTopics !== false) await this.ensureTopics([...byTopic.keys()]);
      // The caller gave up while we reconnected or created topics (the relay rolled its rows
      // back): a send started now would only add a late duplicate. A throw, never a return:
      // should this line run before the timeout's timer fires, a return would be taken for
      // Kafka's acknowledgement of messages never sent.
      if (Date.now() >= deadline) throw new Error(`not sent: the ${timeoutMs} ms publish deadline passed before the send`);
      // reconnect() replaces the producer's connections, not the object: `producer` stays current.
      await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, list]) => ({ topic, messages: list })) });
      for (const topic of byTopic.keys()) this.knownTopics.add(topic); // they exist; probe() checks their leaders
    };
    try {
      // The deadline covers the whole call, not only sendBatch. When the network to the broker
      // is a black hole (no answer, no reset), replacing the failed producer first waits for its
      // requests in flight (kafkajs' disconnect waits up to requestTimeout) and a new topic waits
      // for the admin's CreateTopics: the fault matrix (scenario 9, a 35 s stall) saw publish
      // take 20 s against the 15 s default, the relay's kafka-black-hole test 9.7 s against 3 s.
      // The relay publishes inside its claim transaction, so this bound is how long a cut
      // network can keep its rows locked per attempt. Work cut short goes on in the background:
      // the next call waits for the same reconnect, and a send that still lands is a duplicate
      // with the same ce_id.
      await withTimeout(attempt(), timeoutMs);
    } catch (error) {
      const kind = classify(error);
      if (kind === 'transient' && generation === this.generation) this.failedGeneration = generation;
      throw new PublishError(kind, `publish of ${messages.length} message(s) failed: ${describe(error)}`, { cause: error });
    }
  }

  /**
   * Whether Kafka answers this client again, on the producer's network path and settings: a
   * DescribeCluster, then a ListOffsets of each topic published so far (up to 20), which goes
   * to the leader of every partition: a route broken to one leader fails the probe, as it
   * would fail a publish. A short-lived admin client of its own, so a probe that times out
   * leaves nothing half-broken behind for publishes. Bounded by the publish timeout.
   */
  async probe(): Promise<void> {
    const timeoutMs = this.options.publishTimeoutMs ?? 15_000;
    const admin = this.kafka.admin();
    try {
      await withTimeout(
        (async () => {
          await admin.connect();
          await admin.describeCluster();
          for (const topic of [...this.knownTopics].slice(0, 20)) await admin.fetchTopicOffsets(topic);
        })(),
        timeoutMs,
      );
    } catch (error) {
      throw new PublishError('transient', `Kafka did not answer the probe: ${describe(error)}`, { cause: error });
    } finally {
      void admin.disconnect().catch(() => undefined);
    }
  }

  async disconnect(): Promise<void> {
    const producer = this.producer;
    const admin = this.adminReady;
    this.producer = undefined;
    this.adminReady = undefined;
    await Promise.all([producer?.disconnect(), admin?.then((a) => a.disconnect(), () => undefined)]);
  }

  /** One reconnect at a time; concurrent callers wait for the same one. */
  private reconnect(): Promise<void> {
    this.reconnecting ??= (async () => {
      try {
        await this.producer?.disconnect().catch(() => undefined);
        await this.producer?.connect();
        this.generation++;
      } finally {
        this.reconnecting = undefined;
      }
    })();
    return this.reconnecting;
  }

  /** One admin client, created on first need; a failed connect is retried by the next call. */
  private admin(): Promise<Admin> {
    this.adminReady ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.adminReady = undefined;
      throw error;
    });
    return this.adminReady;
  }

  private async ensureTopics(topics: string[]): Promise<void> {
    const missing = topics.filter((t) => !this.knownTopics.has(t));
    if (missing.length === 0) return;
    // Idempotent: topics that exist are left as they are (two calls creating the same topic are fine).
    await createTopicsAndWait(
      await this.admin(),
      missing.map((topic) => ({
        topic,
        numPartitions: this.options.topicPartitions ?? 12,
        replicationFactor: this.options.topicReplicationFactor ?? -1,
      })),
    );
    for (const t of missing) this.knownTopics.add(t);
  }
}

function classify(error: unknown): 'transient' | 'rejected' {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const type = (e as { type?: string }).type;
    if (type && REJECTED_TYPES.has(type)) return 'rejected';
    e = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return 'transient';
}

function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 3; depth++) {
    parts.push((e as Error).message ?? String(e));
    e = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return [...new Set(parts)].join(': ');
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not acknowledged within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
