import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Admin, type Batch, type Consumer, type KafkaConfig } from 'kafkajs';
import { headersToStrings } from '@eventbus/core';
import { brokersUnreachable, kafkajsConnectionConfig, type KafkaConnectionOptions } from './connection-options.js';

export interface TopicRangeReaderOptions {
  brokers: string[];
  clientId?: string;
  connection?: KafkaConnectionOptions;
}

/** Offsets `[start, end)` of one partition: what a read covers. */
export interface PartitionRange {
  topic: string;
  partition: number;
  start: string;
  end: string;
}

/** One record as an audit needs it: its position, its timestamp and its headers as text (no value). */
export interface RangeRecord {
  topic: string;
  partition: number;
  offset: string;
  /** The record's timestamp, ms since the epoch. */
  timestamp: number;
  key: string | null;
  headers: Record<string, string>;
}

/** A group's committed position in one partition: the next offset it will read (-1: none committed). */
export interface CommittedOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** Restarts of the read's consumer after retriable crashes before the read fails. */
const MAX_RESTARTS = 3;

/**
 * Reads bounded offset ranges of topics, without joining or committing for any real group:
 * what `eventbus audit` compares with the event log. Ranges come from record timestamps
 * (`rangesByTime`), the read hands records to `onRecords` one fetch batch at a time and waits
 * for it, so memory holds one batch whatever the range's size.
 *
 * kafkajs reads only through a consumer group; the reader uses a throwaway one
 * (`eventbus-audit-<uuid>`), never commits for it, and deletes it when the read ends.
 */
export class TopicRangeReader {
  private readonly kafka: Kafka;
  private admin: Admin | undefined;

  constructor(private readonly options: TopicRangeReaderOptions) {
    const config: KafkaConfig = {
      brokers: options.brokers,
      clientId: options.clientId ?? 'eventbus-audit',
      logLevel: logLevel.NOTHING,
      ...kafkajsConnectionConfig(options.connection),
    };
    this.kafka = new Kafka(config);
  }

  /** Connects the admin client; an unreachable cluster is BROKER_UNAVAILABLE. */
  async connect(): Promise<void> {
    if (this.admin) return;
    const admin = this.kafka.admin();
    try {
      await admin.connect();
    } catch (error) {
      throw brokersUnreachable(this.options.brokers, error);
    }
    this.admin = admin;
  }

  /** Which of `topics` exist (an event type whose topic was never created has nothing to read). */
  async existingTopics(topics: readonly string[]): Promise<string[]> {
    const existing = new Set(await this.connected().listTopics());
    return topics.filter((t) => existing.has(t));
  }

  /**
   * Per partition of each topic: from the first record with a timestamp at or after `fromMs`
   * to the first at or after `toMs` (exclusive), or the end of the partition when no record is
   * that late. Empty ranges are left out.
   */
  async rangesByTime(topics: readonly string[], fromMs: number, toMs: number): Promise<PartitionRange[]> {
    const admin = this.connected();
    const ranges: PartitionRange[] = [];
    for (const topic of topics) {
      const starts = await admin.fetchTopicOffsetsByTimestamp(topic, fromMs);
      const ends = await admin.fetchTopicOffsetsByTimestamp(topic, toMs);
      for (const { partition, offset } of starts) {
        const end = ends.find((e) => e.partition === partition)?.offset ?? offset;
        if (BigInt(end) > BigInt(offset)) ranges.push({ topic, partition, start: offset, end });
      }
    }
    return ranges;
  }

  /** The group's committed offsets in `topics` (offset -1: nothing committed for that partition). */
  async committedOffsets(groupId: string, topics: readonly string[]): Promise<CommittedOffset[]> {
    const answer = await this.connected().fetchOffsets({ groupId, topics: [...topics] });
    return answer.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: p.offset })));
  }

  /**
   * Reads every record of `ranges`, handing them to `onRecords` in fetch batches (one partition
   * per call, in offset order); the next batch waits until it resolves. Ends when every range
   * is read, or at the next batch after `signal` aborts.
   */
  async read(ranges: readonly PartitionRange[], onRecords: (records: RangeRecord[]) => Promise<void>, signal?: AbortSignal): Promise<void> {
    if (ranges.length === 0) return;
    const groupId = `eventbus-audit-${randomUUID()}`;
    const consumer = this.kafka.consumer({ groupId, allowAutoTopicCreation: false, retry: { retries: 5 } });
    try {
      await consumer.connect();
      await this.readWith(consumer, ranges, onRecords, signal);
    } finally {
      await consumer.disconnect().catch(() => undefined);
      // The group never committed; deleting it keeps `kafka-consumer-groups --list` clean.
      await this.connected()
        .deleteGroups([groupId])
        .catch(() => undefined);
    }
  }

  private async readWith(
    consumer: Consumer,
    ranges: readonly PartitionRange[],
    onRecords: (records: RangeRecord[]) => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const key = (topic: string, partition: number) => `${topic}\u0000${partition}`;
    const byPartition = new Map(ranges.map((r) => [key(r.topic, r.partition), r]));
    const remaining = new Set(byPartition.keys());
    // The next offset to read in each partition: where every join of the group starts it.
    const next = new Map(ranges.map((r) => [key(r.topic, r.partition), r.start]));
    const topics = [...new Set(ranges.map((r) => r.topic))];
    let finish!: () => void;
    let fail!: (error: unknown) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    // A crash while run() is still joining rejects `done` before it is awaited: not unhandled.
    done.catch(() => undefined);
    const onAbort = () => finish();
    signal?.addEventListener('abort', onAbort, { once: true });
    // kafkajs restarts the consumer after a retriable crash (a join that timed out on a loaded
    // broker): a few restarts are waited for, the GROUP_JOIN below resumes the read.
    let restarts = 0;
    consumer.on(consumer.events.CRASH, (event) => {
      if (event.payload.restart && restarts++ < MAX_RESTARTS) return;
      fail(event.payload.error);
    });
    // Seeks at every join, not once after run(): a restart or a rebalance makes a new offset
    // manager, which would start the partitions again from the committed offsets (none: the
    // read never commits, so from the beginning) and read the records already handed over
    // a second time. run() returns with no group at all when its first join crashed.
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const r of ranges) {
        const k = key(r.topic, r.partition);
        if (remaining.has(k)) consumer.seek({ topic: r.topic, partition: r.partition, offset: next.get(k)! });
      }
    });
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const range = byPartition.get(key(batch.topic, batch.partition));
        if (!range || !remaining.has(key(batch.topic, batch.partition)) || signal?.aborted) {
          consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
          return;
        }
        const end = BigInt(range.end);
        const records = recordsInRange(batch, BigInt(range.start), end);
        try {
          if (records.length > 0) await onRecords(records);
        } catch (error) {
          fail(error);
          return;
        }
        const last = batch.messages[batch.messages.length - 1];
        if (last) {
          resolveOffset(last.offset);
          next.set(key(batch.topic, batch.partition), (BigInt(last.offset) + 1n).toString());
        }
        // The batch reached the range's end: this partition is done. lastOffset() counts control
        // records and records kafkajs filtered out, so a range ending in those ends too. Before
        // the heartbeat, which throws when the group rebalances.
        if (BigInt(batch.lastOffset()) + 1n >= end) {
          remaining.delete(key(batch.topic, batch.partition));
          consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
          if (remaining.size === 0) finish();
        }
        await heartbeat();
      },
    });
    try {
      await done;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Disconnects; safe to call twice or before connect. */
  async disconnect(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.disconnect().catch(() => undefined);
  }

  private connected(): Admin {
    if (!this.admin) throw new Error('TopicRangeReader: call connect() first');
    return this.admin;
  }
}

/** The records of a fetched batch whose offsets fall in [start, end), as the range reader hands them over. */
function recordsInRange(batch: Batch, start: bigint, end: bigint): RangeRecord[] {
  const records: RangeRecord[] = [];
  for (const m of batch.messages) {
    const offset = BigInt(m.offset);
    if (offset < start) continue;
    if (offset >= end) break;
    records.push({
      topic: batch.topic,
      partition: batch.partition,
      offset: m.offset,
      timestamp: Number(m.timestamp),
      key: m.key === null ? null : m.key.toString('utf8'),
      headers: headersToStrings(m.headers),
    });
  }
  return records;
}
