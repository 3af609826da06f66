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
  // By topic, then partition, counting in numbers: a `topic + partition` key string and a
  // bigint sum per message would be ~0.2 KB of garbage for every message the relay sends.
  const acknowledged = new Map<string, Map<number, PartitionOffsets>>();
  for (const answer of answers) {
    if (answer.errorCode !== 0) continue;
    const base = BigInt(answer.baseOffset);
    if (base < 0n) continue;
    let partitions = acknowledged.get(answer.topicName);
    if (!partitions) acknowledged.set(answer.topicName, (partitions = new Map()));
    partitions.set(answer.partition, new PartitionOffsets(base));
  }
  const positions = new Array<PublishedPosition | undefined>(sent.length);
  for (let i = 0; i < sent.length; i++) {
    const { topic, partition } = sent[i]!;
    const offsets = partition === undefined ? undefined : acknowledged.get(topic)?.get(partition);
    positions[i] = offsets === undefined ? undefined : { topic, partition: partition!, offset: offsets.next() };
  }
  return positions;
}

/** The offsets of one acknowledged partition's messages, in the order they were sent: base, base + 1, … */
class PartitionOffsets {
  private count = 0;
  /** The base as a number, when it is exact as one (below 2^53: centuries of appends at any rate Kafka reaches). */
  private readonly safeBase: number | undefined;

  constructor(private readonly base: bigint) {
    this.safeBase = base <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(base) : undefined;
  }

  next(): string {
    const index = this.count++;
    // Number arithmetic while the offset stays exact; a bigint beyond (64-bit offsets).
    if (this.safeBase !== undefined && index <= Number.MAX_SAFE_INTEGER - this.safeBase) return String(this.safeBase + index);
    return (this.base + BigInt(index)).toString();
  }
}
