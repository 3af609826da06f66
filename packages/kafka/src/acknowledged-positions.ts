import type { PublishedPosition } from './publisher.js';

/** One partition's answer to a produce request, as the Kafka client reports it. */
export interface PartitionAcknowledgement {
  topicName: string;
  partition: number;
  errorCode: number;
  /** The offset Kafka gave the first message of the batch it appended; -1 when it gave none. */
  baseOffset: string;
}

/** A message as it was handed to the client, with the partition the client chose for it. */
export interface SentMessage {
  topic: string;
  /** Undefined when the client never chose one (the message was not sent). */
  partition: number | undefined;
}

/** The outcome of checking a send: a position for every message, or the messages without one. */
export type AcknowledgementCheck =
  | { ok: true; positions: PublishedPosition[] }
  | { ok: false; unacknowledged: number; example: { topic: string; partition: number | undefined } };

/**
 * The position of every message of a send, computed from the partition answers alone, or
 * the messages that have none. This check is the relay's safeguard independent of the
 * client: a send that resolves is trusted only when each message's partition answered
 * without error and with an offset. It caught kafkajs #1303 (a partition moved during a
 * retry to a broker that had already answered, left out of the answers, and the send
 * resolved anyway).
 *
 * Messages of one partition are appended in the order they were given (one batch per
 * partition per request), so the k-th message of a partition sits at `baseOffset + k`.
 */
export function acknowledgedPositions(sent: readonly SentMessage[], answers: readonly PartitionAcknowledgement[]): AcknowledgementCheck {
  const each = positionsWhereAcknowledged(sent, answers);
  const unacknowledged = each.filter((p) => p === undefined).length;
  if (unacknowledged === 0) return { ok: true, positions: each as PublishedPosition[] };
  const missing = sent[each.indexOf(undefined)]!;
  return { ok: false, unacknowledged, example: { topic: missing.topic, partition: missing.partition } };
}

/**
 * Each message's position, or undefined where its partition was not acknowledged. Used for a
 * send that failed for some partitions: the messages of the others are in Kafka, and a caller
 * that re-sent them would write them twice.
 */
export function positionsWhereAcknowledged(sent: readonly SentMessage[], answers: readonly PartitionAcknowledgement[]): Array<PublishedPosition | undefined> {
  const baseOffsets = new Map<string, bigint>();
  for (const answer of answers) {
    if (answer.errorCode !== 0) continue;
    const base = BigInt(answer.baseOffset);
    if (base < 0n) continue;
    baseOffsets.set(partitionKey(answer.topicName, answer.partition), base);
  }
  const nextIndex = new Map<string, bigint>();
  return sent.map((message) => {
    if (message.partition === undefined) return undefined;
    const key = partitionKey(message.topic, message.partition);
    const base = baseOffsets.get(key);
    if (base === undefined) return undefined;
    const index = nextIndex.get(key) ?? 0n;
    nextIndex.set(key, index + 1n);
    return { topic: message.topic, partition: message.partition, offset: (base + index).toString() };
  });
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
