import { errorMessage, EventBusError, invalidConfig } from '@eventbus/core';
import {
  KafkajsConsumerClient,
  KafkaPublisher,
  warnAboutCopyTopicLimits,
  type ConsumerGroupClient,
  type MessagePublisher,
  type TopicSubscriptionSpec,
} from '@eventbus/kafka';
import { recordEventMetric } from '@eventbus/monitor';
import { BatchProcessor } from './batch-processor.js';
import { loadDrizzle, type InboxTransaction } from './inbox.js';
import { type InboxCall, InboxPool, inboxStopped } from './inbox-pool.js';
import { type EventContract, isEventContract } from '@eventbus/contracts';
import {
  contractSubscription,
  resolveConsumerOptions,
  resolveSubscription,
  type EventConsumerOptions,
  type ResolvedConsumerOptions,
  type ResolvedSubscription,
} from './options.js';
import { CopyPublisher } from './copy-publisher.js';
import type { ContractHandler, ContractSubscriptionOptions, SubscriptionOptions } from './types.js';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/**
 * Subscribes handlers to event types over one Kafka consumer group.
 *
 * ```ts
 * const consumer = new EventConsumer({ brokers, groupId: 'search-indexer' })
 * consumer.subscribe({ eventTypes: ['product.*'], handler: async (event, ctx) => { ... } })
 * await consumer.start()
 * await consumer.stop()
 * ```
 */
export class EventConsumer {
  /** The validated options, defaults applied. */
  readonly options: ResolvedConsumerOptions;
  private readonly subscriptions: ResolvedSubscription[] = [];
  private state: State = 'new';
  private client: ConsumerGroupClient | undefined;
  private publisher: MessagePublisher | undefined;
  private processor: BatchProcessor | undefined;
  private inbox: InboxPool | undefined;
  private readonly stopGrace = new AbortController();
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(options: EventConsumerOptions) {
    this.options = resolveConsumerOptions(options);
  }

  /**
   * Adds a handler for a contract's events (typed payload, upcast to the contract's version,
   * checked by its schema; a payload that fails is dead-lettered at once), or for events
   * matching `eventTypes` (untyped, wildcards allowed). Only before `start()`.
   */
  subscribe<C extends EventContract>(contract: C, handler: ContractHandler<C>, options?: ContractSubscriptionOptions): this;
  subscribe<Payload = unknown>(subscription: SubscriptionOptions<Payload>): this;
  subscribe(first: EventContract | SubscriptionOptions<unknown>, handler?: ContractHandler<EventContract>, options: ContractSubscriptionOptions = {}): this {
    if (this.state !== 'new') throw invalidConfig('subscribe()', 'a call before start()', this.state);
    const subscription = isEventContract(first) ? contractSubscription(first, handler as ContractHandler<EventContract>, options.name) : first;
    const taken = new Set(this.subscriptions.map((s) => s.name));
    this.subscriptions.push(resolveSubscription(subscription as SubscriptionOptions<never>, this.subscriptions.length, taken));
    return this;
  }

  /** The event topics, the retry topic and the DLQ topic this consumer uses. */
  topics(): { eventTopics: string[]; eventTopicPattern?: RegExp; retryTopic: string; dlqTopic: string } {
    const { topics, topicPattern } = this.options.router.topicsFor(this.subscriptions.flatMap((s) => s.eventTypes));
    return {
      eventTopics: topics,
      ...(topicPattern ? { eventTopicPattern: topicPattern } : {}),
      retryTopic: this.options.retryTopic,
      dlqTopic: this.options.dlqTopic,
    };
  }

  /** Creates missing topics, joins the group and starts handling events. */
  start(): Promise<void> {
    if (this.state !== 'new') throw new EventBusError('INVALID_CONFIG', `start() was already called (the consumer is ${this.state})`);
    if (this.subscriptions.length === 0) throw invalidConfig('subscribe()', 'at least one subscription before start()', 'none');
    this.state = 'starting';
    this.starting = this.connectAndRun();
    return this.starting;
  }

  private async connectAndRun(): Promise<void> {
    const o = this.options;
    try {
      if (o.connectionString !== undefined) {
        // With the inbox configured, drizzle-orm is loaded now, not in the first event's handler,
        // and its table is checked before anything is consumed: on a database behind migration
        // 0007 every ctx.processOnce would fail, and its events be retried, then dead-lettered.
        this.inbox = new InboxPool({
          connectionString: o.connectionString,
          partitionsConsumedConcurrently: o.partitionsConsumedConcurrently,
          handlerTimeoutMs: o.handlerTimeoutMs,
        });
        await Promise.all([loadDrizzle(), import('drizzle-orm/node-postgres'), this.inbox.checkSchema()]);
      }
      this.publisher =
        o.publisher ?? new KafkaPublisher({ brokers: o.brokers, clientId: `${o.clientId}-dlq`, topicPartitions: o.topicPartitions, connection: o.connection });
      await this.publisher.connect();
      this.processor = new BatchProcessor({
        options: o,
        subscriptions: this.subscriptions,
        publisher: new CopyPublisher(this.publisher),
        recordMetric: o.onMetric ?? recordEventMetric,
        stopSignal: this.stopGrace.signal,
        processOnce: (call, effect) => this.processOnce(call, effect),
      });
      const openClient = o.consumerClient ?? ((settings) => new KafkajsConsumerClient({ ...settings, brokers: o.brokers, connection: o.connection }));
      const client = openClient({
        groupId: o.groupId,
        clientId: o.clientId,
        concurrency: o.partitionsConsumedConcurrently,
        sessionTimeoutMs: o.sessionTimeoutMs,
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        rebalanceTimeoutMs: o.rebalanceTimeoutMs,
        onCommitError: (error) => o.logger.warn({ groupId: o.groupId, err: errorMessage(error) }, 'offset commit failed; the offsets go with the next commit'),
        onCrash: (error, { restartedBy }) =>
          o.logger.warn({ groupId: o.groupId, err: errorMessage(error), restartedBy }, 'Kafka consumer crashed; restarting it'),
        onRewind: (error, { topic, partition, offset }) =>
          o.logger.warn(
            { groupId: o.groupId, err: errorMessage(error), topic, partition, offset },
            'a retry or DLQ copy was not acknowledged; its partition is read again from that event',
          ),
        onBatchError: (error) =>
          o.logger.warn(
            { groupId: o.groupId, err: errorMessage(error) },
            'a slow batch failed after the fetch round went on; its unfinished events are delivered again',
          ),
      });
      this.client = client;
      const { eventTopics, eventTopicPattern, retryTopic, dlqTopic } = this.topics();
      // The retry and DLQ topics get room for a copy of the largest event plus the headers it gains.
      warnAboutCopyTopicLimits(await client.ensureTopics(eventTopics, o.topicPartitions, [retryTopic, dlqTopic]), o.logger, { groupId: o.groupId });
      const subscriptions: TopicSubscriptionSpec[] = [
        { topics: eventTopicPattern ? [...eventTopics, eventTopicPattern] : eventTopics, fromBeginning: o.fromBeginning },
        // Everything in the retry topic is this group's pending work, whenever it was written.
        { topics: [retryTopic], fromBeginning: true },
      ];
      const processor = this.processor;
      await client.start(subscriptions, (messages, control) => processor.handleBatch(messages, control));
      // stop() may have been called while starting; it waits for `starting` to end.
      this.state = 'running';
    } catch (error) {
      await this.release(Date.now());
      this.state = 'stopped';
      throw error;
    }
  }

  /**
   * Lets handlers in flight finish (aborting their signal after `shutdownGraceMs`), commits
   * the offsets of finished messages and leaves the group. Idempotent; safe before start.
   */
  stop(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped';
      return Promise.resolve();
    }
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    // A stop during start waits for the start to finish (or fail) so nothing is left half-connected.
    await this.starting?.catch(() => undefined);
    this.state = 'stopping';
    const graceEndsAt = Date.now() + this.options.shutdownGraceMs;
    const grace = setTimeout(() => this.stopGrace.abort(), this.options.shutdownGraceMs);
    try {
      await this.release(graceEndsAt);
    } finally {
      clearTimeout(grace);
      this.state = 'stopped';
    }
  }

  /** `inboxDeadline`: when stop()'s grace period ends; the inbox's transactions still open then are ended (InboxPool.close). */
  private async release(inboxDeadline: number): Promise<void> {
    const client = this.client;
    const publisher = this.publisher;
    const inbox = this.inbox;
    this.client = undefined;
    this.publisher = undefined;
    this.inbox = undefined;
    try {
      // The client first: its batches in flight may still publish retries and DLQ messages.
      await client?.stop();
    } finally {
      this.processor?.close();
      // Only a publisher this consumer created is disconnected; a caller's one is theirs.
      if (!this.options.publisher) await publisher?.disconnect().catch(() => undefined);
      await inbox?.close(inboxDeadline, this.options.logger, this.options.groupId);
    }
  }

  private async processOnce(call: InboxCall, effect: (tx: InboxTransaction) => Promise<void>): Promise<boolean> {
    if (!this.options.connectionString) throw invalidConfig('connectionString', 'a postgres:// URL for context.processOnce', 'nothing');
    // Opened by start() with the connectionString, released by stop(): a handler abandoned on the
    // grace period that calls processOnce after that gets STOPPED, not a new pool.
    if (!this.inbox) throw inboxStopped();
    return this.inbox.processOnce(call, effect);
  }
}
