import type { RecordPosition, StoredRecord } from './record-at-offset.js';
/** One message bound for Kafka. */
export interface OutboundMessage {
  topic: string;
  key: string | Buffer;
  value: string | Buffer;
  headers: Record<string, string | Buffer>;
  /**
   * Chooses the partition from the topic's partition count, instead of the key's hash (the
   * consumer's retry copies: a range of partitions per retry delay). Returns 0 to count − 1.
   */
  choosePartition?: (partitionCount: number) => number;
}

/** Where Kafka stored one message: the answer of the partition leader that acknowledged it. */
export interface PublishedPosition {
  topic: string;
  partition: number;
  /** The message's offset in its partition (a decimal string: Kafka offsets are 64-bit). */
  offset: string;
}

/**
 * Publishes batches to Kafka. The contract the relay, the consumer's retry path and the
 * replay CLI rely on:
 * - `publish` resolves only once every message was acknowledged by all in-sync replicas
 *   (acks = -1), with the position Kafka gave each message (`positions[i]` for
 *   `messages[i]`); a message without an acknowledged position is a failed publish, never a
 *   resolved one;
 * - messages with the same topic and key are written in array order;
 * - calls may overlap, but order across calls holds only between calls that do not: a
 *   caller that needs per-key order keeps one batch of that key in flight (the relay: a
 *   tenant belongs to one shard, a shard to one lane, a lane sends one batch at a time);
 * - it rejects with a `PublishError` whose `kind` says whether the broker or network failed
 *   (`transient`: try the same batch later) or the messages themselves were refused
 *   (`rejected`: e.g. too large; retrying the same bytes will not help);
 * - a publisher may refuse single messages without sending them (larger than their topic
 *   accepts, a topic that does not exist and may not be created) and send the others: it
 *   then rejects (`rejected`) with `refusals` naming the refused messages and `positions`
 *   the stored ones.
 */
export interface MessagePublisher {
  connect(): Promise<void>;
  publish(messages: readonly OutboundMessage[]): Promise<PublishedPosition[]>;
  /** Idempotent; safe before connect. */
  disconnect(): Promise<void>;
  /**
   * Resolves when Kafka answers this client again, rejects (`PublishError`, transient) when
   * it does not. Optional: a relay lane that handed its shards to other instances because it
   * could not reach Kafka (`kafkaFailoverMs`) probes before it rejoins; without `probe` it
   * never hands them over.
   */
  probe?(): Promise<void>;
  /**
   * Which of `topics` do not exist, asked of Kafka now (not a cached answer), for a publisher
   * that may not create topics; `[]` for one that creates them on send. Rejects when Kafka does
   * not answer. Optional: the relay asks it when a hold on a missing topic ends, before it
   * offers the topic's rows again; without it, it offers them and the refusal answers.
   */
  missingTopics?(topics: readonly string[]): Promise<string[]>;
  /**
   * The refusals `publish` would make without a send, one per message, undefined where the
   * message would be offered to Kafka: a message larger than its topic accepts, a topic that
   * does not exist and may not be created (`PublishError`, rejected, with its reason). Answers
   * from what the publisher knows already, never waiting for Kafka: undefined too for a message
   * of a topic it would have to ask about (not met yet, a check due again), which `publish`
   * then decides. Optional: the relay asks it before its send, so the rows it refuses go to the
   * DLQ table (or wait for their topic) while the others are sent, instead of in a statement
   * after the send that the batch's commit waits for; without it, the refusals come from `publish`.
   */
  refusalsBeforeSend?(messages: readonly OutboundMessage[]): Array<PublishError | undefined>;
  /**
   * Creates those of `copyTopics` (a consumer group's retry or DLQ topics) that do not exist,
   * sized for copies of the messages of `sources` the way the consumer sizes them
   * (createCopyTopics), where a publish would create them with the broker's default size.
   * Existing topics are left as they are. Rejects (`PublishError`, transient) when Kafka does not
   * answer. Optional: a re-drive calls it before it publishes to a retry topic; without it the
   * topic is created (or not) like any other on publish.
   */
  ensureCopyTopics?(copyTopics: readonly string[], sources: readonly string[]): Promise<void>;
  /**
   * The record at `position`, read from its topic without committing for any group. Rejects
   * with `ORIGINAL_NOT_RETAINED` when the partition no longer holds that offset (retention, a
   * deleted topic, compaction), with `BROKER_UNAVAILABLE` (retriable) when Kafka does not answer
   * within `timeoutMs` (default 30 s); never hangs. Optional: a re-drive of a DLQ record that
   * does not hold the value reads the original with it; without it that re-drive is refused.
   */
  readRecordAt?(position: RecordPosition, options?: { timeoutMs?: number }): Promise<StoredRecord>;
}

export type PublishFailureKind = 'transient' | 'rejected';

/**
 * Why a `rejected` publish was refused, where that is known: `too-large` (the message is larger
 * than its topic accepts: the same bytes are refused until the topic's limit is raised) or
 * `missing-topic` (a topic that does not exist and may not be created: fixed by creating it).
 */
export type PublishRefusalReason = 'too-large' | 'missing-topic';

/** A failed publish, classified for the caller's retry decision. */
export class PublishError extends Error {
  override readonly name = 'PublishError';
  /**
   * For a publish that failed for some partitions only: `positions[i]` is where Kafka stored
   * `messages[i]` nonetheless (its partition was acknowledged in the same request), undefined
   * where it was not. Absent when nothing is known to be stored. A caller re-sending the
   * failed messages leaves out those with a position, or they are written twice.
   */
  readonly positions?: ReadonlyArray<PublishedPosition | undefined>;
  /**
   * Messages the publisher refused without sending them, each for its own sake:
   * `refusals[i]` says why `messages[i]` was refused, undefined where it was sent. Only on a
   * `rejected` error. A message with neither a position nor a refusal was in a request Kafka
   * refused as a whole: the caller finds out which of those Kafka refuses (the relay halves).
   */
  readonly refusals?: ReadonlyArray<PublishError | undefined>;
  /** Why a `rejected` publish was refused, where the publisher knows. */
  readonly reason?: PublishRefusalReason;
  constructor(
    readonly kind: PublishFailureKind,
    message: string,
    options?: {
      cause?: unknown;
      positions?: ReadonlyArray<PublishedPosition | undefined>;
      refusals?: ReadonlyArray<PublishError | undefined>;
      reason?: PublishRefusalReason;
    },
  ) {
    super(message, options);
    if (options?.reason !== undefined) this.reason = options.reason;
    if (options?.positions?.some((p) => p !== undefined)) this.positions = options.positions;
    if (options?.refusals?.some((r) => r !== undefined)) this.refusals = options.refusals;
  }
}

/**
 * Whether `error` is a publish refused because its message is larger than its topic accepts
 * (Kafka's MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE, or the publisher's own check before the
 * send): the same bytes are refused until the topic's `max.message.bytes` is raised. For a
 * publish of one message, so that the refusal is that message's.
 */
export function isTooLargeRefusal(error: unknown): boolean {
  if (!(error instanceof PublishError) || error.kind !== 'rejected') return false;
  if (error.reason === 'too-large') return true;
  const refusals = error.refusals?.filter((r) => r !== undefined) ?? [];
  return refusals.length > 0 && refusals.every((r) => r.reason === 'too-large');
}
