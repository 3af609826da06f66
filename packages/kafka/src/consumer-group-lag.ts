import { Kafka, logLevel, type Admin } from 'kafkajs';
import { brokersUnreachable, kafkajsConnectionConfig, type KafkaConnectionOptions } from './connection-options.js';

/** One partition a consumer group has committed an offset on. */
export interface PartitionLag {
  topic: string;
  partition: number;
  /** The group's committed offset (the next record it will read); -1 when none is committed. */
  committed: number;
  /** The partition's high watermark (the offset the next produced record gets). */
  end: number;
  /** end - committed, or end - low watermark when nothing is committed. */
  lag: number;
}

/** A consumer group's lag per partition, as Kafka records it (committed offsets against high watermarks). */
export interface GroupLag {
  groupId: string;
  partitions: PartitionLag[];
  totalLag: number;
  /** Sum of committed offsets: its change over time is the rate the group consumes at. */
  committedTotal: number;
}

export interface ConsumerGroupLagOptions {
  brokers: string[];
  clientId?: string;
  connection?: KafkaConnectionOptions;
}

/** At most this many groups are read when no list is given: a shared cluster may hold thousands. */
export const MAX_LISTED_GROUPS = 50;

/**
 * Reads consumer groups' committed offsets and the high watermarks of the partitions they
 * commit on, through one admin connection. Read-only: it never joins a group, so reading a
 * group's lag does not rebalance it.
 */
export class ConsumerGroupLagReader {
  private readonly kafka: Kafka;
  private admin: Admin | undefined;

  constructor(private readonly options: ConsumerGroupLagOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'eventbus-lag',
      brokers: options.brokers,
      logLevel: logLevel.NOTHING,
      // A console polls every second: a broker that is away must fail the read quickly, not hang it.
      retry: { retries: 1, initialRetryTime: 200, maxRetryTime: 1000 },
      connectionTimeout: 3000,
      requestTimeout: 5000,
      ...kafkajsConnectionConfig(options.connection),
    });
  }

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

  /**
   * The lag of `groups`, or of the cluster's consumer groups (at most MAX_LISTED_GROUPS, by
   * name) when none are given. A group that committed nothing has no partitions.
   */
  async lag(groups?: readonly string[]): Promise<GroupLag[]> {
    await this.connect();
    const admin = this.admin!;
    const groupIds = groups ?? (await this.listConsumerGroups());
    const highWatermarks = new Map<string, Map<number, { high: number; low: number }>>();
    const watermarksOf = async (topic: string) => {
      let known = highWatermarks.get(topic);
      if (!known) {
        known = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, { high: Number(p.high), low: Number(p.low) }]));
        highWatermarks.set(topic, known);
      }
      return known;
    };
    const result: GroupLag[] = [];
    for (const groupId of groupIds) {
      const partitions: PartitionLag[] = [];
      for (const { topic, partitions: offsets } of await admin.fetchOffsets({ groupId })) {
        const watermarks = await watermarksOf(topic);
        for (const { partition, offset } of offsets) {
          const mark = watermarks.get(partition);
          if (!mark) continue;
          const committed = Number(offset);
          partitions.push({ topic, partition, committed, end: mark.high, lag: Math.max(0, mark.high - (committed >= 0 ? committed : mark.low)) });
        }
      }
      partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
      result.push({
        groupId,
        partitions,
        totalLag: partitions.reduce((sum, p) => sum + p.lag, 0),
        committedTotal: partitions.reduce((sum, p) => sum + Math.max(0, p.committed), 0),
      });
    }
    return result;
  }

  private async listConsumerGroups(): Promise<string[]> {
    const { groups } = await this.admin!.listGroups();
    return groups
      .filter((g) => g.protocolType === 'consumer')
      .map((g) => g.groupId)
      .sort()
      .slice(0, MAX_LISTED_GROUPS);
  }

  /** Idempotent; safe before connect. */
  async disconnect(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.disconnect();
  }
}
