import { Kafka, logLevel, type Consumer, type ConsumerConfig, type EachBatchHandler, type KafkaConfig } from 'kafkajs';
import { reconnectDelayMs, sleep } from '@eventbus/core';
import { brokersUnreachable, isConnectionFailure, kafkajsConnectionConfig, type KafkaConnectionOptions } from '../connection-options.js';
import { createTopicsAndWait, retryWhileTopicUnknown } from '../create-topics.js';
import { kafkajsPatchRevision } from '../kafkajs-patch.js';
import { createCopyTopics } from '../topic-limits.js';
import {
  COMMIT_INTERVAL_MS,
  type BatchHandler,
  type ConsumerGroupClient,
  type ConsumerGroupSettings,
  type CopyTopicSizing,
  type InboundMessage,
  type TopicSubscriptionSpec,
} from './consumer-client.js';
import { MembershipWatch } from './membership-watch.js';
import { OffsetCommitter } from './offset-committer.js';
import { OrderedCommits } from './ordered-commits.js';
import { PartitionPauses } from './partition-pauses.js';

/** Whether kafkajs waits for detached batches before a rejoin or leave (`run({ settleBatches })`, patch revision 6): only then are batches detached. */
const SETTLES_BATCHES = (kafkajsPatchRevision() ?? 0) >= 6;

/** Errors that say the group is rebalancing (as kafkajs' own isRebalancing): the member rejoins, nothing to report. */
const REBALANCE_TYPES = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION']);
const isRebalancing = (error: unknown) => REBALANCE_TYPES.has((error as { type?: string } | undefined)?.type ?? '');

/** A partition with this many offsets waiting for copies is paused until they went to the committer (OrderedCommits.backlog). */
const MAX_OFFSETS_WAITING = 10_000;

/** How long the commit before a rejoin, or before a leave kafkajs makes itself, is waited for (settleDetached). */
const FINAL_FLUSH_WAIT_MS = 5000;

/** How long stop() waits for offsets whose commit waits for a copy (BatchControl.resolveOffset's `after`) before it commits without them: KafkaPublisher's default publish timeout. */
const ACK_WAIT_LIMIT_MS = 15_000;

/** Settings of the kafkajs consumer behind `ConsumerGroupClient`. */
export interface KafkajsConsumerOptions extends ConsumerGroupSettings {
  brokers: string[];
  /** TLS, SASL and timeouts. */
  connection?: KafkaConnectionOptions;
  /** kafkajs settings beyond `connection`, applied last (tests: a socket factory, a log level). Specific to this adapter. */
  kafkajs?: Partial<KafkaConfig>;
  /** kafkajs consumer settings (tests: a short `metadataMaxAge`, so that partitions added to a topic are noticed at once). Specific to this adapter. */
  kafkajsConsumer?: Pick<ConsumerConfig, 'metadataMaxAge'>;
}

/**
 * The one place kafkajs' consumer is used. `eachBatch` (not `eachMessage`) because only
 * a batch handler can heartbeat while a long handler runs. Offsets are resolved by the
 * caller one message at a time and committed by an `OffsetCommitter` every
 * `COMMIT_INTERVAL_MS`, not by kafkajs after every batch (`autoCommit: false`), so no batch
 * waits for an OffsetCommit round trip. A stop commits everything finished before leaving
 * the group; a rebalance noticed by a heartbeat commits before the batch ends, and so does every
 * rejoin and every leave kafkajs makes (settleDetached); a crash of the process redelivers about
 * one interval of work at most.
 */
export class KafkajsConsumerClient implements ConsumerGroupClient {
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private committer: OffsetCommitter | undefined;
  /** The current consumer's per-partition commit order (offsets waiting for copies, and those after them). */
  private commits: OrderedCommits | undefined;
  /** Set by stop(): batches end after their current message and new ones are left unprocessed. */
  private stopping = false;
  private batchesInFlight = 0;
  private batchesIdle: (() => void) | undefined;
  private stopped: Promise<void> | undefined;
  /** A fresh consumer being started after a crash kafkajs does not recover from by itself. */
  private restarting: Promise<void> | undefined;
  /** The consumer started by a restart crashed in its first join (kafkajs' run() then resolves all the same): go again. */
  private crashedDuringRestart = false;
  /** Checks the current consumer's membership (MembershipWatch) once a second. */
  private watchTimer: NodeJS.Timeout | undefined;
  /** Aborted by stop(): ends a restart's backoff at once. */
  private readonly stopSignal = new AbortController();
  /** Counts the group generations this client joined: a batch's resolves count only in its own. */
  private generation = 0;
  /** Batches going on after their eachBatch returned (BatchControl.detach). */
  private readonly detached = new Set<Promise<void>>();
  /** Set while kafkajs waits for the detached batches before a rejoin or leave: they end after their current message. */
  private settling = false;
  /** The signals of the batches not ended yet (BatchControl.signal), by `topic|partition`. */
  private readonly batchSignals = new Map<AbortController, string>();

  constructor(private readonly options: KafkajsConsumerOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      // kafkajs' default backoff grows to 30 s between reconnects, so a consumer resumed up to
      // ~30 s after a broker outage ended (fault matrix scenario 3); 5 s bounds that delay.
      retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 10 },
      ...kafkajsConnectionConfig(options.connection),
      ...options.kafkajs,
    });
  }

  async ensureTopics(topics: readonly string[], partitions: number, copyTopics: readonly string[] = []): Promise<CopyTopicSizing | undefined> {
    if (topics.length === 0 && copyTopics.length === 0) return undefined;
    const admin = this.kafka.admin();
    await admin.connect().catch((error: unknown) => {
      throw brokersUnreachable(this.options.brokers, error);
    });
    try {
      // Idempotent: topics that exist keep their partition count (and their configuration).
      await createTopicsAndWait(
        admin,
        topics.map((topic) => ({ topic, numPartitions: partitions })),
      );
      if (copyTopics.length === 0) return undefined;
      return await createCopyTopics(admin, copyTopics, { sources: topics, partitions });
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

  /** One consumer: opened and subscribed, its events watched, its batches run, its membership checked. */
  private async startOnce(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): Promise<void> {
    const consumer = await this.openConsumer(subscriptions);
    const committer = new OffsetCommitter(
      (offsets) => consumer.commitOffsets(offsets),
      COMMIT_INTERVAL_MS,
      (error) => this.commitFailed(error),
    );
    this.committer = committer;
    const commits = new OrderedCommits(
      (topic, partition) => committer.partitionResolver(topic, partition),
      (topic, partition, offset, error) => this.rewind(consumer, { topic, partition, offset }, error),
    );
    this.commits = commits;
    // No heartbeat accepted and no join for 2 session timeouts (at least 15 s): the member left
    // its group without a crash and is not coming back by itself (see MembershipWatch).
    const membershipLimitMs = Math.max(15_000, 2 * this.options.sessionTimeoutMs);
    const membership = new MembershipWatch(membershipLimitMs);
    const pauses = new PartitionPauses();
    this.watchEvents(consumer, committer, commits, membership, pauses, () => this.restartAfterCrash(subscriptions, eachBatch));
    await consumer.run({
      partitionsConsumedConcurrently: this.options.concurrency,
      eachBatchAutoResolve: false,
      autoCommit: false,
      eachBatch: this.batchAdapter(consumer, committer, commits, pauses, eachBatch),
      settleBatches: () => this.settleDetached(committer),
    });
    committer.start();
    clearInterval(this.watchTimer);
    this.watchTimer = setInterval(() => {
      if (this.consumer !== consumer || this.stopping || this.restarting || !membership.expired()) return;
      this.options.onCrash?.(new Error(`no heartbeat accepted and no join for ${membershipLimitMs} ms: the member left its group without a crash`), {
        restartedBy: 'client',
      });
      this.restartAfterCrash(subscriptions, eachBatch);
    }, 1000);
    this.watchTimer.unref();
  }

  /** A new kafkajs consumer of the group, connected and subscribed; it becomes `this.consumer`. */
  private async openConsumer(subscriptions: readonly TopicSubscriptionSpec[]): Promise<Consumer> {
    const consumer: Consumer = this.kafka.consumer({
      groupId: this.options.groupId,
      sessionTimeout: this.options.sessionTimeoutMs,
      heartbeatInterval: this.options.heartbeatIntervalMs,
      rebalanceTimeout: this.options.rebalanceTimeoutMs ?? 60_000,
      maxWaitTimeInMs: 100,
      // The consumer creates its topics itself (ensureTopics) with the relay's partition
      // count; a broker auto-created topic would silently get the broker default.
      allowAutoTopicCreation: false,
      ...this.options.kafkajsConsumer,
      // kafkajs' own restart after a retriable crash, as by default (5 retries), but never of a
      // consumer this client replaced or stopped: it would rejoin the group as a zombie member.
      retry: { retries: 5, restartOnFailure: async () => this.consumer === consumer && !this.stopping },
    });
    this.consumer = consumer;
    try {
      await consumer.connect();
      // A pattern subscription asks for the cluster's metadata: the first request that needs an answer.
      for (const s of subscriptions) await consumer.subscribe({ topics: s.topics, fromBeginning: s.fromBeginning });
    } catch (error) {
      throw isConnectionFailure(error) ? brokersUnreachable(this.options.brokers, error) : error;
    }
    return consumer;
  }

  /** The group events this client acts on: heartbeats and joins (membership, generations), rebalances, crashes. */
  private watchEvents(
    consumer: Consumer,
    committer: OffsetCommitter,
    commits: OrderedCommits,
    membership: MembershipWatch,
    pauses: PartitionPauses,
    restart: () => void,
  ): void {
    consumer.on(consumer.events.HEARTBEAT, () => membership.alive());
    // A new generation: pending offsets are forgotten (see OffsetCommitter.assign).
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      this.generation++;
      this.endBatches();
      membership.alive();
      committer.assign(e.payload.memberAssignment);
      commits.reset();
    });
    // A rebalance found by the fetch loop (the member was between batches): commit what is
    // pending before the join if the request gets there first; if not, at most one interval of
    // work is processed again.
    consumer.on(consumer.events.REBALANCING, () => void committer.flush().catch((error: unknown) => this.commitFailed(error)));
    // kafkajs restarts its consumer after a crash only when the error is retriable; after any
    // other (a coordinator not found, a request timeout, an error of ours that escaped a
    // batch) the consumer stays down, silently, with the process alive. Start a fresh one.
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.consumer !== consumer) return; // replaced or stopped: its end is expected
      const { error, restart: kafkajsRestarts } = event.payload;
      this.options.onCrash?.(error, { restartedBy: kafkajsRestarts ? 'kafkajs' : 'client' });
      // kafkajs' restart builds a new consumer group state: nothing is paused in it.
      if (kafkajsRestarts) pauses.forgetAll();
      else restart();
    });
  }

  /** kafkajs' eachBatch in terms of the port: InboundMessages and a BatchControl. */
  private batchAdapter(
    consumer: Consumer,
    committer: OffsetCommitter,
    commits: OrderedCommits,
    pauses: PartitionPauses,
    eachBatch: BatchHandler,
  ): EachBatchHandler {
    return async ({ batch, heartbeat, resolveOffset, isRunning, isStale, pause }) => {
      if (this.stopping) return; // left unresolved: the next owner reads it
      if (this.consumer !== consumer) {
        // A consumer this client replaced, restarted by a kafkajs timer set before: leave the group.
        void consumer.disconnect().catch(() => undefined);
        return;
      }
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
        // Resolves after the member rejoined belong to a generation that is gone: the new one
        // starts from the committed offsets, and a late resolve could move them backwards.
        // (Counted across this client's consumers: a replacement's join ends the old one's generation.)
        const generation = this.generation;
        const { topic, partition } = batch;
        // Resolves after the partition was rewound (a copy Kafka did not take) belong to work
        // that is read again: they must move neither the fetch position nor the commit.
        const ordered = commits.partition(topic, partition);
        const epoch = ordered.epoch;
        const pausePartition = () => pauses.pause(topic, partition, pause);
        const ending = new AbortController();
        this.batchSignals.set(ending, `${topic}|${partition}`);
        let detached = false;
        try {
          await eachBatch(messages, {
            heartbeat: async () => {
              try {
                await heartbeat();
              } catch (error) {
                // Rebalancing: the member still holds its generation, so what it finished can be
                // committed before it rejoins (kafkajs does the same with autoCommit).
                await committer.flush().catch((commitError: unknown) => this.commitFailed(commitError));
                throw error;
              }
            },
            resolveOffset: (offset, after) => {
              if (this.generation !== generation) return;
              // The commit in partition order, once `after` settled; the fetch goes on at once.
              if (!ordered.resolve(offset, epoch, after)) return;
              resolveOffset(offset); // kafkajs' fetch position
              // Counted for every resolve: one copy stuck before a stream of healthy messages backs them all up.
              const backlog = ordered.backlog(MAX_OFFSETS_WAITING);
              if (backlog) void backlog.finally(pausePartition());
            },
            isRunning: () => !this.stopping && isRunning(),
            isStale: () => this.generation !== generation || this.settling || isStale() || ordered.isStale(epoch),
            pause: pausePartition,
            ...(SETTLES_BATCHES
              ? {
                  detach: (work: Promise<unknown>) => {
                    detached = true;
                    this.detach(
                      work.finally(() => this.batchSignals.delete(ending)),
                      pausePartition(),
                    );
                  },
                  signal: ending.signal,
                }
              : {}),
          });
        } finally {
          if (!detached) this.batchSignals.delete(ending);
        }
      } finally {
        if (--this.batchesInFlight === 0) this.batchesIdle?.();
      }
    };
  }

  /**
   * A copy that an offset's commit waited for was not taken by Kafka (OrderedCommits): the
   * partition is read again from that message, which sends its copy again. Only on the consumer
   * that fetched it, and not while stopping: the next owner reads from the committed offset anyway.
   */
  private rewind(consumer: Consumer, position: { topic: string; partition: number; offset: string }, error: unknown): void {
    if (this.consumer !== consumer || this.stopping) return;
    this.endBatches(`${position.topic}|${position.partition}`);
    try {
      consumer.seek(position);
    } catch (seekError) {
      // Not running any more (a crash): the next consumer starts from the committed offset.
      this.options.onCommitError?.(seekError);
    }
    this.options.onRewind?.(error, position);
  }

  /**
   * Keeps a partition paused (`resume` ends that) while `work` handles the rest of its batch;
   * counted as a batch in flight, which stop() waits for, and waited for by kafkajs before the
   * member rejoins or leaves its group (settleDetached).
   */
  private detach(work: Promise<unknown>, resume: () => void): void {
    this.batchesInFlight++;
    const settled: Promise<void> = work
      .then(
        () => undefined,
        // A rebalance reported by a heartbeat is kafkajs' to handle (it notices it too); anything
        // else would have reached kafkajs from an eachBatch that had not returned.
        (error: unknown) => {
          if (!isRebalancing(error)) this.options.onBatchError?.(error);
        },
      )
      .finally(() => {
        this.detached.delete(settled);
        resume();
        if (--this.batchesInFlight === 0) this.batchesIdle?.();
      });
    this.detached.add(settled);
  }

  /**
   * Called by kafkajs (patch revision 6) before the member rejoins its group (a rebalance; since
   * revision 8 also the rejoin after a fetch that found the cluster changed) or leaves it (stop,
   * crash): the detached batches end after their current message, and what
   * they finished is committed, while the member still holds its partitions. Without this, the
   * group would give a partition to another member while this one still handled it.
   */
  private async settleDetached(committer: OffsetCommitter): Promise<void> {
    if (this.detached.size > 0) {
      this.settling = true;
      this.endBatches();
      try {
        await Promise.all([...this.detached]);
      } finally {
        this.settling = false;
      }
    }
    // Also with nothing detached: when kafkajs stops its consumer itself (a crash it restarts
    // from, or one the client restarts from), this is the last moment the member can commit
    // what its batches finished (patch revision 8 lets that commit through while the runner
    // stops); the client's own stop() has committed already and finds nothing pending. Bounded:
    // a coordinator that does not answer must not hold up the rejoin past the rebalance timeout,
    // nor the restart; what is not committed is delivered again.
    const settled = new AbortController();
    const flushed = committer
      .flush()
      .catch((error: unknown) => this.commitFailed(error))
      .finally(() => settled.abort());
    await Promise.race([flushed, sleep(FINAL_FLUSH_WAIT_MS, settled.signal)]);
  }

  /** Aborts the signals of the batches not ended yet (BatchControl.signal), or of one partition's (`topic|partition`). */
  private endBatches(partition?: string): void {
    for (const [ending, key] of this.batchSignals) {
      if (partition !== undefined && key !== partition) continue;
      this.batchSignals.delete(ending);
      ending.abort();
    }
  }

  /** A commit that failed; its offsets go with the next one. */
  private commitFailed(error: unknown): void {
    this.options.onCommitError?.(error);
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  /**
   * Replaces a crashed (or silently departed) consumer with a fresh one in the same group,
   * with the same subscriptions and handler, with backoff, until one runs or the client
   * stops. A crash of the fresh consumer while it starts is seen (crashedDuringRestart) and
   * retried; stop() waits for this to finish, so no member joins after stop() resolved.
   */
  private restartAfterCrash(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): void {
    if (this.restarting) {
      this.crashedDuringRestart = true;
      return;
    }
    this.restarting = (async () => {
      for (let attempt = 1; !this.stopping; attempt++) {
        await sleep(reconnectDelayMs(attempt, { initialMs: 250, maxMs: 5000 }), this.stopSignal.signal);
        if (this.stopping) return;
        await this.dropConsumer(); // waits for its batch in flight, if any
        if (this.stopping) return;
        this.crashedDuringRestart = false;
        try {
          await this.start(subscriptions, eachBatch);
        } catch (error) {
          this.options.onCrash?.(error, { restartedBy: 'client' });
          continue;
        }
        if (this.stopping) return; // shutdown() leaves with the consumer just started
        if (!this.crashedDuringRestart) return;
      }
    })().finally(() => {
      this.restarting = undefined;
    });
  }

  /** Stops the current consumer's membership watch and committer (its generation is gone) and leaves with it. */
  private async dropConsumer(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    clearInterval(this.watchTimer);
    // Its generation is gone: a failed last commit only means that work is delivered again.
    await this.committer?.stop().catch(() => undefined);
    await consumer?.disconnect().catch(() => undefined);
  }

  private async shutdown(): Promise<void> {
    // 1. Batches end after their current message (isRunning() turns false for them); a restart
    //    after a crash gives up and is waited for, so no member joins after this.
    this.stopping = true;
    this.stopSignal.abort();
    this.endBatches();
    clearInterval(this.watchTimer);
    await this.restarting;
    const consumer = this.consumer;
    const committer = this.committer;
    this.consumer = undefined;
    if (!consumer) return;
    if (this.batchesInFlight > 0) await new Promise<void>((resolve) => (this.batchesIdle = resolve));
    // Offsets still waiting for their copies go to the committer before the last commit, as long
    // as the copies take to be acknowledged or refused (a publish timeout) but no longer than
    // ACK_WAIT_LIMIT_MS: what still waits then is delivered again to the next owner.
    const waiting = this.commits?.waiting() ?? [];
    if (waiting.length > 0) {
      const settled = new AbortController();
      await Promise.race([Promise.all(waiting).finally(() => settled.abort()), sleep(ACK_WAIT_LIMIT_MS, settled.signal)]);
    }
    // 2. Everything finished is committed while the member still owns its partitions.
    await committer?.stop().catch((error: unknown) => this.commitFailed(error));
    // 3. LeaveGroup, so partitions move at once, not after a session timeout.
    await consumer.disconnect();
  }
}
