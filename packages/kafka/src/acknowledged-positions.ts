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
  const baseOffsets = new Map<string, bigint>();
  for (const answer of answers) {
    if (answer.errorCode !== 0) continue;
    const base = BigInt(answer.baseOffset);
    if (base < 0n) continue;
    baseOffsets.set(partitionKey(answer.topicName, answer.partition), base);
  }
  const nextIndex = new Map<string, bigint>();
  const positions: PublishedPosition[] = [];
  let unacknowledged = 0;
  let example: { topic: string; partition: number | undefined } | undefined;
  for (const message of sent) {
    const key = message.partition === undefined ? undefined : partitionKey(message.topic, message.partition);
    const base = key === undefined ? undefined : baseOffsets.get(key);
    if (key === undefined || base === undefined) {
      unacknowledged++;
      example ??= { topic: message.topic, partition: message.partition };
      continue;
    }
    const index = nextIndex.get(key) ?? 0n;
    nextIndex.set(key, index + 1n);
    positions.push({ topic: message.topic, partition: message.partition!, offset: (base + index).toString() });
  }
  if (unacknowledged > 0) return { ok: false, unacknowledged, example: example! };
  return { ok: true, positions };
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
