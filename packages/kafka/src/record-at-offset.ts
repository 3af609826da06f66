import { randomUUID } from 'node:crypto';
import type { Admin, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import { EventBusError, errorMessage } from '@eventbus/core';
import { kafkaRefusal, type KafkaRefusal } from './kafka-authorization.js';

/** Where one record is: the coordinates a DLQ record keeps of the original. */
export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

/** One record read back from its topic, with its bytes as Kafka holds them. */
export interface StoredRecord extends RecordPosition {
  /** The record's timestamp, ms since the epoch. */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** A repeated header name keeps its last value, as the consumer reads headers; a header without a value is left out. */
  headers: Record<string, Buffer>;
}

/** The prefix of the throwaway consumer group of each read: the prefixed group ACL a reader's principal needs. */
export const READ_GROUP_PREFIX = 'eventbus-read-';

/** Time a read of one record may take, connect, group join and fetch included. */
export const DEFAULT_RECORD_READ_TIMEOUT_MS = 30_000;

/** Restarts of the read's consumer after retriable crashes (a join that timed out on a loaded broker) before the read fails. */
const MAX_RESTARTS = 2;
/**
 * How long the read waits for each clean-up step once it ended (the consumer's disconnect, which
 * can take a session timeout while it is joining; the group's deletion against a slow broker):
 * a read is bounded by its timeout plus at most twice this.
 */
const CLEANUP_WAIT_MS = 5000;

/**
 * Reads the record at `position` from its topic, committing nothing: the reader of a re-drive
 * of a DLQ record that does not hold the value (MessagePublisher.readRecordAt).
 *
 * The offsets are checked first (ListOffsets): an offset below the partition's first retained
 * offset, at or past its end, or a topic or partition that does not exist, rejects with
 * `ORIGINAL_NOT_RETAINED` at once. kafkajs reads only through a consumer group: the read uses
 * a throwaway one (`eventbus-read-<uuid>`), seeks the one partition at every join (a restart or
 * a rebalance would otherwise start from the committed offsets, of which there are none),
 * never commits, and deletes the group afterwards. A record missing at a retained offset
 * (compacted away, or a transaction marker) is `ORIGINAL_NOT_RETAINED` too. The whole read is
 * bounded by `timeoutMs`: past it, `BROKER_UNAVAILABLE` (retriable), never a hang.
 *
 * Kafka refusing the principal (an ACL missing on the topic or the read groups, or credentials
 * refused) rejects with `KAFKA_NOT_AUTHORIZED`, not retriable, naming the ACLs a read needs:
 * Describe and Read on the topic, Read (and Delete, for the clean-up) on the consumer groups
 * prefixed `eventbus-read-`.
 */
export async function readRecordAt(
  kafka: Kafka,
  admin: Admin,
  position: RecordPosition,
  timeoutMs: number = DEFAULT_RECORD_READ_TIMEOUT_MS,
): Promise<StoredRecord> {
  const validOffset = /^\d{1,19}$/.test(position.offset) && BigInt(position.offset) < 2n ** 63n;
  if (!validOffset || !Number.isInteger(position.partition) || position.partition < 0) {
    throw new EventBusError('INVALID_CONFIG', `cannot read ${describePosition(position)}: expected a partition and an offset (int64) of 0 or more`);
  }
  const groupId = `${READ_GROUP_PREFIX}${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false, retry: { retries: 3 } });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new EventBusError(
            'BROKER_UNAVAILABLE',
            `reading ${describePosition(position)} took more than ${timeoutMs} ms; Kafka may be overloaded or unreachable, try again`,
            {
              retriable: true,
              details: { ...position, timeoutMs },
            },
          ),
        ),
      timeoutMs,
    );
  });
  let ended = false;
  const release = async () => {
    await atMost(consumer.disconnect(), CLEANUP_WAIT_MS);
    // The group never committed; deleting it keeps `kafka-consumer-groups --list` clean (best effort).
    await atMost(admin.deleteGroups([groupId]), CLEANUP_WAIT_MS);
  };
  const work = (async () => {
    await checkRetained(admin, position);
    return readOne(consumer, position, () => ended);
  })();
  // After a timeout the read goes on in the background until its next step sees `ended`: the
  // consumer it may have connected or joined since is let go of then, or it would stay in the group.
  void work.then(
    () => (ended ? release() : undefined),
    () => (ended ? release() : undefined),
  );
  try {
    return await Promise.race([work, timeout]);
  } catch (error) {
    if (error instanceof EventBusError) throw error;
    const refusal = kafkaRefusal(error);
    if (refusal) throw notAuthorized(position, refusal, groupId, error);
    // kafkajs drops the broker's answer to FindCoordinator (GROUP_AUTHORIZATION_FAILED among
    // others) and throws this instead: a refusal cannot be told from an unavailable coordinator.
    const coordinator =
      (error as { name?: unknown } | undefined)?.name === 'KafkaJSGroupCoordinatorNotFound'
        ? ` (for the read's consumer group ${groupId}): the group coordinator is unavailable, or Kafka refuses this client's principal the group, which kafkajs reports the same way; a read needs ${READ_GROUP_ACL}`
        : '';
    throw new EventBusError('BROKER_UNAVAILABLE', `reading ${describePosition(position)} failed: ${errorMessage(error)}${coordinator}`, {
      cause: error,
      retriable: true,
    });
  } finally {
    ended = true;
    clearTimeout(timer);
    await release();
  }
}

/** Rejects with ORIGINAL_NOT_RETAINED when the partition does not hold `position.offset` (any more). */
async function checkRetained(admin: Admin, position: RecordPosition): Promise<void> {
  const { topic, partition } = position;
  if (!(await admin.listTopics()).includes(topic) && !(await topicExists(admin, topic))) throw notRetained(position, `topic ${topic} does not exist`);
  const offsets = await admin.fetchTopicOffsets(topic);
  const bounds = offsets.find((o) => o.partition === partition);
  if (!bounds) throw notRetained(position, `topic ${topic} has no partition ${partition}`);
  const offset = BigInt(position.offset);
  if (offset < BigInt(bounds.low)) {
    throw notRetained(position, `the partition's first retained offset is ${bounds.low}: retention (or a deleteRecords) removed it`, {
      firstRetainedOffset: bounds.low,
    });
  }
  if (offset >= BigInt(bounds.high)) {
    throw notRetained(
      position,
      `the partition ends at offset ${bounds.high}: the topic was deleted and created again since, a transaction on it is still open, or this is another cluster`,
      {
        endOffset: bounds.high,
      },
    );
  }
}

/**
 * Whether `topic` exists, asked by name: Kafka lists only the topics the principal may describe,
 * and answers a request for one it may not with TOPIC_AUTHORIZATION_FAILED (thrown), whether it
 * exists or not; taken for a missing topic, it would be advised a replay instead of an ACL.
 */
async function topicExists(admin: Admin, topic: string): Promise<boolean> {
  try {
    await admin.fetchTopicMetadata({ topics: [topic] });
    return true;
  } catch (error) {
    if ((error as { type?: unknown } | undefined)?.type === 'UNKNOWN_TOPIC_OR_PARTITION') return false;
    throw error;
  }
}

/** The read's consumer steps; each checks `ended` (the read timed out meanwhile) before the next, so none starts after the read gave up. */
async function readOne(consumer: ReturnType<Kafka['consumer']>, position: RecordPosition, ended: () => boolean): Promise<StoredRecord> {
  const { topic, partition } = position;
  const target = BigInt(position.offset);
  let resolveRead!: (record: StoredRecord) => void;
  let failRead!: (error: unknown) => void;
  const read = new Promise<StoredRecord>((resolve, reject) => {
    resolveRead = resolve;
    failRead = reject;
  });
  // A crash while run() is still joining rejects `read` before it is awaited: not unhandled.
  read.catch(() => undefined);
  let restarts = 0;
  consumer.on(consumer.events.CRASH, (event) => {
    if (event.payload.restart && restarts++ < MAX_RESTARTS) return;
    failRead(event.payload.error);
  });
  consumer.on(consumer.events.GROUP_JOIN, () => consumer.seek({ topic, partition, offset: position.offset }));
  // kafkajs hands eachBatch no batch whose records were all filtered out (transaction markers,
  // aborted records) but reports its end: a target that is such a record, with nothing after
  // it, would otherwise wait for the timeout and be reported as a retriable broker problem.
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.partition === partition && BigInt(payload.lastOffset) >= target) {
      failRead(notRetained(position, 'the partition holds no record at that offset (compacted away, or a transaction marker)'));
    }
  });
  const stopIfEnded = () => {
    if (ended()) throw new Error('the read timed out');
  };
  stopIfEnded();
  await consumer.connect();
  stopIfEnded();
  // Not from the beginning: the other partitions, assigned to this member too, then fetch nothing.
  await consumer.subscribe({ topics: [topic], fromBeginning: false });
  stopIfEnded();
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      if (batch.partition !== partition) {
        consumer.pause([{ topic, partitions: [batch.partition] }]);
        return;
      }
      // kafkajs hands over no empty batches and skips batches of compacted or control records
      // only: the first record at or past the target is the target, or the target is gone.
      const first = batch.messages.find((m) => BigInt(m.offset) >= target);
      if (!first && BigInt(batch.lastOffset()) < target) return;
      consumer.pause([{ topic, partitions: [partition] }]);
      if (first && BigInt(first.offset) === target) resolveRead(storedRecord(position, first));
      else failRead(notRetained(position, `the partition holds no record at that offset (compacted away, or a transaction marker)`));
    },
  });
  stopIfEnded();
  return read;
}

function storedRecord(position: RecordPosition, message: KafkaMessage): StoredRecord {
  return {
    ...position,
    timestamp: Number(message.timestamp),
    key: message.key,
    value: message.value,
    headers: lastHeaderValues(message.headers),
  };
}

function lastHeaderValues(headers: IHeaders | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [name, raw] of Object.entries(headers ?? {})) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value !== undefined && value !== null) out[name] = Buffer.isBuffer(value) ? value : Buffer.from(value);
  }
  return out;
}

function notRetained(position: RecordPosition, why: string, details: Record<string, unknown> = {}): EventBusError {
  return new EventBusError('ORIGINAL_NOT_RETAINED', `${describePosition(position)} is not retained: ${why}`, { details: { ...position, ...details } });
}

const READ_GROUP_ACL = `Read on the consumer groups with the prefix ${READ_GROUP_PREFIX} (a prefixed ACL; Delete there too, so each read deletes its group)`;

/** Kafka refused the reader's principal: which ACLs a read needs, and how to grant them. */
function notAuthorized(position: RecordPosition, refusal: KafkaRefusal, groupId: string, cause: unknown): EventBusError {
  const { topic } = position;
  const details = { ...position, refusal, groupPrefix: READ_GROUP_PREFIX };
  if (refusal === 'SASL_AUTHENTICATION_FAILED') {
    return new EventBusError(
      'KAFKA_NOT_AUTHORIZED',
      `reading ${describePosition(position)}: Kafka refused this client's credentials (${refusal}): check the SASL mechanism, username and password`,
      { cause, details },
    );
  }
  const refused =
    refusal === 'TOPIC_AUTHORIZATION_FAILED'
      ? `access to topic ${topic}`
      : refusal === 'GROUP_AUTHORIZATION_FAILED'
        ? `the read's consumer group ${groupId}`
        : 'the request';
  return new EventBusError(
    'KAFKA_NOT_AUTHORIZED',
    `reading ${describePosition(position)}: Kafka refused this client's principal ${refused} (${refusal}). A read needs Describe and Read on topic ${topic}, and ${READ_GROUP_ACL}: ` +
      `kafka-acls --add --allow-principal User:<name> --operation Describe --operation Read --topic ${topic}, and --operation Read --operation Delete --group ${READ_GROUP_PREFIX} --resource-pattern-type prefixed`,
    { cause, details },
  );
}

function describePosition(position: RecordPosition): string {
  return `${position.topic} partition ${position.partition} offset ${position.offset}`;
}

/** Waits for `work` at most `ms`; its failure is ignored (a clean-up step). */
async function atMost(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
