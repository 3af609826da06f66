import { Kafka, logLevel, type Consumer, type KafkaConfig } from 'kafkajs';
import { createTopicsAndWait, retryWhileTopicUnknown } from '@eventbus/kafka';
import { COMMIT_INTERVAL_MS, type BatchHandler, type ConsumerGroupClient, type InboundMessage, type TopicSubscriptionSpec } from './consumer-client.js';
import { ExpulsionWatch } from './expulsion-watch.js';
import { OffsetCommitter } from './offset-committer.js';

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
  /** A background offset commit failed (the offsets go with the next commit). */
  onCommitError?: (error: unknown) => void;
  /**
   * kafkajs' consumer crashed. `restarting`: whether this client starts a fresh consumer
   * (kafkajs itself restarts only after errors it deems retriable; this client restarts after
   * the others too, until stopped).
   */
  onCrash?: (error: unknown, info: { restartedBy: 'kafkajs' | 'client' }) => void;
}

/**
 * The one place kafkajs' consumer is used. `eachBatch` (not `eachMessage`) because only
 * a batch handler can heartbeat while a long handler runs. Offsets are resolved by the
 * caller one message at a time and committed by an `OffsetCommitter` every
 * `COMMIT_INTERVAL_MS`, not by kafkajs after every batch (`autoCommit: false`), so no batch
 * waits for an OffsetCommit round trip. A stop commits everything finished before leaving
 * the group; a rebalance noticed by a heartbeat commits before the batch ends; a crash
 * redelivers about one interval of work at most.
 */
export class KafkajsConsumerClient implements ConsumerGroupClient {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private committer: OffsetCommitter | undefined;
  /** Set by stop(): batches end after their current message and new ones are left unprocessed. */
  private stopping = false;
  private batchesInFlight = 0;
  private batchesIdle: (() => void) | undefined;
  private stopped: Promise<void> | undefined;
  /** A fresh consumer being started after a crash kafkajs does not recover from by itself. */
  private restarting: Promise<void> | undefined;

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
    // Refused as unknown to the coordinator for this long (2 session timeouts, at least 15 s),
    // the member is taken as expelled for good: start a fresh consumer (see ExpulsionWatch).
    const expulsion = new ExpulsionWatch(Math.max(15_000, 2 * this.options.sessionTimeoutMs));
    const committer = new OffsetCommitter((offsets) => consumer.commitOffsets(offsets), COMMIT_INTERVAL_MS, (error) => {
      this.options.onCommitError?.(error);
      if (expulsion.commitFailed(error) && this.consumer === consumer) {
        this.options.onCrash?.(new Error(`offset commits refused as from an unknown member for ${Math.max(15_000, 2 * this.options.sessionTimeoutMs)} ms: expelled and not rejoining`), { restartedBy: 'client' });
        this.restartAfterCrash(subscriptions, eachBatch);
      }
    });
    this.committer = committer;
    // A new generation: pending offsets are forgotten (see OffsetCommitter.assign).
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      expulsion.joined();
      committer.assign(e.payload.memberAssignment);
    });
    // A rebalance found by the fetch loop (the member was between batches): commit what is
    // pending before the join if the request gets there first; if not, at most one interval of
    // work is processed again.
    consumer.on(consumer.events.REBALANCING, () => void committer.flush().catch(() => undefined));
    // kafkajs restarts its consumer after a crash only when the error is retriable; after any
    // other (a coordinator not found, a request timeout, an error of ours that escaped a
    // batch) the consumer stays down, silently, with the process alive. Start a fresh one.
    consumer.on(consumer.events.CRASH, (event) => {
      const { error, restart } = event.payload;
      this.options.onCrash?.(error, { restartedBy: restart ? 'kafkajs' : 'client' });
      if (!restart && this.consumer === consumer) this.restartAfterCrash(subscriptions, eachBatch);
    });
    await consumer.run({
      partitionsConsumedConcurrently: this.options.concurrency,
      eachBatchAutoResolve: false,
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat, resolveOffset, isRunning, isStale, pause }) => {
        if (this.stopping) return; // left unresolved: the next owner reads it
        this.batchesInFlight++;
        try {
          const messages: InboundMessage[] = batch.messages.map((m) => ({
            topic: batch.topic,
            partition: batch.partition,
            offset: m.offset,
            timestamp: Number(m.timestamp),
            key: m.key,
            value: m.value,
            headers: m.headers ?? {},
          }));
          await eachBatch(messages, {
            heartbeat: async () => {
              try {
                await heartbeat();
              } catch (error) {
                // Rebalancing: the member still holds its generation, so what it finished can be
                // committed before it rejoins (kafkajs does the same with autoCommit).
                await committer.flush().catch(() => undefined);
                throw error;
              }
            },
            resolveOffset: (offset) => {
              resolveOffset(offset); // kafkajs' fetch position
              committer.resolve(batch.topic, batch.partition, offset);
            },
            isRunning: () => !this.stopping && isRunning(),
            isStale,
            pause,
          });
        } finally {
          if (--this.batchesInFlight === 0) this.batchesIdle?.();
        }
      },
    });
    committer.start();
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /** Replaces a crashed consumer with a fresh one (same group, subscriptions, handler), with backoff, until it runs or the client stops. */
  private restartAfterCrash(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): void {
    this.restarting ??= (async () => {
      for (let attempt = 1; !this.stopping; attempt++) {
        await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** attempt)));
        if (this.stopping) return;
        const crashed = this.consumer;
        this.consumer = undefined;
        await this.committer?.stop().catch(() => undefined); // its generation is gone: a commit would fail
        await crashed?.disconnect().catch(() => undefined);
        try {
          await this.start(subscriptions, eachBatch);
          if (this.stopping) {
            // stop() ran while this consumer was starting: it did not see it, so leave here.
            const started = this.consumer as Consumer | undefined; // set again by start()
            this.consumer = undefined;
            await started?.disconnect().catch(() => undefined);
          }
          return;
        } catch (error) {
          this.options.onCrash?.(error, { restartedBy: 'client' });
        }
      }
    })().finally(() => {
      this.restarting = undefined;
    });
  }

  private async shutdown(): Promise<void> {
    // 1. Batches end after their current message (isRunning() turns false for them), and a
    //    restart after a crash gives up (or leaves at once if its consumer is starting).
    this.stopping = true;
    const consumer = this.consumer;
    const committer = this.committer;
    this.consumer = undefined;
    if (!consumer) return;
    if (this.batchesInFlight > 0) await new Promise<void>((resolve) => (this.batchesIdle = resolve));
    // 2. Everything finished is committed while the member still owns its partitions.
    await committer?.stop().catch((error) => this.options.onCommitError?.(error));
    // 3. LeaveGroup, so partitions move at once, not after a session timeout.
    await consumer.disconnect();
  }
}
