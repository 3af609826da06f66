import type { RawHeaders } from '@eventbus/core';

/** A fetched message, in the shape the consumer needs (no kafkajs types leak out of the adapter). */
export interface InboundMessage {
  topic: string;
  partition: number;
  offset: string;
  /** ms since the epoch, as Kafka stored it. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: RawHeaders;
}

/**
 * How often the offsets of finished messages are committed (OffsetCommitter), whether a
 * batch is still being worked through or the member is idle. It bounds what a crash or an
 * unannounced rebalance redelivers to about a second of work, at one OffsetCommit per second
 * per member at most.
 */
export const COMMIT_INTERVAL_MS = 1000;

/** What a batch handler may do while it works through one partition's batch. */
export interface BatchControl {
  /**
   * Sends a heartbeat if one is due (kafkajs sends at most one per heartbeat interval); call it
   * between messages and while a long handler runs to keep group membership. Rejects when the
   * group is rebalancing (after committing the resolved offsets): let that end the batch so
   * the member rejoins at once.
   */
  heartbeat(): Promise<void>;
  /**
   * Marks the message as done: its offset goes with the next commit (periodic, stop or
   * rebalance). With `after` (a retry or DLQ copy's acknowledgement, say), the fetch goes on at
   * once but the offset is committed only once `after` resolved, and every later offset of the
   * partition waits for it too; if `after` rejects, the partition is read again from this
   * message (`onRewind`), and what the batches fetched before that resolve is ignored.
   */
  resolveOffset(offset: string, after?: Promise<unknown>): void;
  /** False once the consumer is stopping: leave the rest of the batch to whoever gets it next. */
  isRunning(): boolean;
  /** True when the partition was re-positioned (a seek, a rewind) or the member rejoined its group since the batch was fetched: the rest of the batch is stale. */
  isStale(): boolean;
  /**
   * Stops fetching this partition; the returned function resumes it (once; later calls do
   * nothing). Pauses nest: the partition is fetched again when every pause was resumed.
   * Unresolved messages are fetched again after the resume.
   */
  pause(): () => void;
  /**
   * Ends the batch's part in the fetch round while `work` goes on handling the rest of it: the
   * partition stays paused until `work` ends, and stop() waits for it as for a batch in flight.
   * kafkajs fetches a broker's partitions in rounds and starts the next round only when every
   * batch of the last one returned, so one partition's slow handler would otherwise hold up
   * every other partition on its broker. `work` resolves offsets through this control and
   * stops when `isStale()` turns true: kafkajs waits for it before the member rejoins or leaves
   * its group, so no other member is given the partition while it runs. Absent where the
   * client cannot wait for it that way (a kafkajs without patch revision 6): then handle the
   * batch before returning.
   */
  detach?(work: Promise<unknown>): void;
  /**
   * Aborted once the batch must end: the consumer stops, the member is about to rejoin or leave
   * its group, or the partition was rewound. A detached batch that waits (for a retry message to
   * be due) ends the wait on it and then finds `isRunning()` false or `isStale()` true. Present
   * with `detach`.
   */
  signal?: AbortSignal;
}

/** Handles one partition's batch; messages are in offset order. */
export type BatchHandler = (messages: readonly InboundMessage[], control: BatchControl) => Promise<void>;

/** One subscribe call: exact topics and/or patterns, and where a new group starts. */
export interface TopicSubscriptionSpec {
  topics: Array<string | RegExp>;
  fromBeginning: boolean;
}

/** How `ensureTopics` sized the copy topics. */
export interface CopyTopicSizing {
  /** The `max.message.bytes` a copy topic needs; undefined when the broker would not tell the limits (DescribeConfigs refused): created copy topics then have the broker's default. */
  neededBytes: number | undefined;
  /** Copy topics that exist with a smaller `max.message.bytes`: a copy of an event near the copied topics' limit would be refused. */
  shortfalls: Array<{ topic: string; maxMessageBytes: number }>;
  /** Why the limits (of the copied topics, or the broker's) could not be read, when one of them could not: `neededBytes` then rests on the other, or is undefined. */
  unknownBecause?: string;
}

/** A consumer group member, as small as the consumer and the DLQ mirror need it. */
export interface ConsumerGroupClient {
  /**
   * Creates missing topics (existing ones are left as they are). `copyTopics` receive copies of
   * the messages of `topics` (and of topics like them) with headers added: the retry and DLQ
   * topics. Those created here get a `max.message.bytes` above what the copied topics accept
   * (the client's rule, e.g. copyTopicLimit); those that exist with less are returned, for the
   * caller to warn about. Undefined when there are no copy topics or the client cannot tell.
   */
  ensureTopics(topics: readonly string[], partitions: number, copyTopics?: readonly string[]): Promise<CopyTopicSizing | undefined>;
  /** Joins the group and starts calling `eachBatch`; resolves once running. */
  start(subscriptions: readonly TopicSubscriptionSpec[], eachBatch: BatchHandler): Promise<void>;
  /** Ends the batches in flight after their current message, commits resolved offsets and leaves the group. Idempotent. */
  stop(): Promise<void>;
}

/** What a consumer group client is opened with: its group, and how its owner hears of trouble. */
export interface ConsumerGroupSettings {
  groupId: string;
  clientId: string;
  /** Partitions handled at the same time. */
  concurrency: number;
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  /**
   * How long the group waits for this member to rejoin once a rebalance started (Kafka's
   * rebalance timeout; 60 s when left out). The member rejoins after its handler calls in
   * progress end, so it must outlast the longest call: past it, the group gives the member's
   * partitions to others while the call still runs.
   */
  rebalanceTimeoutMs?: number;
  /** A background offset commit failed (the offsets go with the next commit). */
  onCommitError?: (error: unknown) => void;
  /**
   * The client's consumer crashed, or left its group without a crash. `restartedBy`: who
   * starts it again, the Kafka library (after errors it deems retriable) or the client itself.
   */
  onCrash?: (error: unknown, info: { restartedBy: 'kafkajs' | 'client' }) => void;
  /**
   * What an offset's commit waited for (BatchControl.resolveOffset's `after`) rejected: the
   * partition is read again from `offset`.
   */
  onRewind?: (error: unknown, position: { topic: string; partition: number; offset: string }) => void;
  /** A batch that went on after its handler returned (BatchControl.detach) failed; its unfinished messages are fetched again. */
  onBatchError?: (error: unknown) => void;
}

/**
 * Opens the client of one consumer group. `EventConsumer` and `DlqMirror` take one (option
 * `consumerClient`) the way the relay takes a `MessagePublisher`; their default opens a
 * `KafkajsConsumerClient` on their brokers.
 */
export type ConsumerGroupClientFactory = (settings: ConsumerGroupSettings) => ConsumerGroupClient;
