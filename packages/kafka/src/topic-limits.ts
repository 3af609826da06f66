import type { Admin, ConfigResourceTypes } from 'kafkajs';
import { errorMessage, type Logger } from '@eventbus/core';
import type { CopyTopicSizing } from './consumer/consumer-client.js';
import { createTopicsAndWait } from './create-topics.js';

/**
 * `ConfigResourceTypes.TOPIC` and `.BROKER`: kafkajs is CommonJS and Node's ESM import of it
 * does not see that enum as a named export, so the values are written out.
 */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;
const BROKER_RESOURCE = 4 as ConfigResourceTypes;

/**
 * What a retry or DLQ topic accepts beyond the largest message of the topics it copies. A copy
 * carries the original key, value and headers plus the consumer's retry headers (under 1 KiB)
 * or DLQ headers (under 8 KiB: the error message and stack are capped, see
 * MAX_DLQ_ERROR_MESSAGE_BYTES in @eventbus/core), and travels alone in its record batch where
 * the original may have shared one. 64 KiB leaves room for long topic, group and subscription
 * names and for headers added by a later version, at a cost of nothing until a copy uses it.
 */
export const COPY_TOPIC_HEADROOM_BYTES = 64 * 1024;

/**
 * The `max.message.bytes` copy topics need: the largest limit among the topics they copy and the
 * broker's `message.max.bytes` (the limit of every topic created without its own, the relay's
 * included, and of topics a pattern subscription finds later), plus COPY_TOPIC_HEADROOM_BYTES.
 */
export function copyTopicLimit(sourceLimits: Iterable<number>, brokerMessageMaxBytes: number): number {
  let largest = brokerMessageMaxBytes;
  for (const limit of sourceLimits) largest = Math.max(largest, limit);
  return largest + COPY_TOPIC_HEADROOM_BYTES;
}

/**
 * Creates the copy topics (a group's retry and DLQ topics) that do not exist, with a
 * `max.message.bytes` of copyTopicLimit over `sources` (the topics whose messages they copy) and
 * the broker's `message.max.bytes`, and returns that limit and the copy topics that exist with
 * less. A copy topic at the broker's default would refuse the copy of an event near its topic's
 * limit (the copy adds retry or DLQ headers). When the broker will describe neither the sources
 * nor itself (a managed Kafka's ACLs), the copy topics are created with the broker's default and
 * nothing is checked. The one way copy topics are created: by the consumer and the DLQ mirror
 * (ConsumerGroupClient.ensureTopics) and by a re-drive's publisher (KafkaPublisher.ensureCopyTopics).
 */
export async function createCopyTopics(
  admin: Admin,
  copyTopics: readonly string[],
  options: { sources: readonly string[]; partitions: number; replicationFactor?: number },
): Promise<CopyTopicSizing> {
  // Each read on its own: a principal may describe topics but not the cluster's brokers (a
  // managed Kafka), and a topic's effective limit includes the broker default it inherits.
  let unknownBecause: string | undefined;
  const unknown = (error: unknown) => {
    unknownBecause ??= errorMessage(error);
    return undefined;
  };
  const sourceLimits = await describeTopicLimits(admin, options.sources).catch(unknown);
  const brokerLimit = await describeBrokerMessageMaxBytes(admin).catch(unknown);
  const neededBytes =
    brokerLimit !== undefined || (sourceLimits !== undefined && sourceLimits.size > 0)
      ? copyTopicLimit(sourceLimits?.values() ?? [], brokerLimit ?? 0)
      : undefined;
  const config = neededBytes === undefined ? {} : { configEntries: [{ name: 'max.message.bytes', value: String(neededBytes) }] };
  const replication = options.replicationFactor === undefined ? {} : { replicationFactor: options.replicationFactor };
  await createTopicsAndWait(
    admin,
    copyTopics.map((topic) => ({ topic, numPartitions: options.partitions, ...replication, ...config })),
  );
  if (neededBytes === undefined) return { neededBytes, shortfalls: [], ...(unknownBecause === undefined ? {} : { unknownBecause }) };
  let limits: Map<string, number>;
  try {
    limits = await describeTopicLimits(admin, copyTopics);
  } catch (error) {
    return { neededBytes, shortfalls: [], unknownBecause: errorMessage(error) };
  }
  const shortfalls: CopyTopicSizing['shortfalls'] = [];
  for (const topic of copyTopics) {
    const maxMessageBytes = limits.get(topic);
    if (maxMessageBytes !== undefined && maxMessageBytes < neededBytes) shortfalls.push({ topic, maxMessageBytes });
  }
  // A limit read without one of the two sources is still used, and said to be partial.
  return { neededBytes, shortfalls, ...(unknownBecause === undefined ? {} : { unknownBecause }) };
}

/** Each topic's effective `max.message.bytes` (its own, or the broker's it inherits); throws when the broker refuses DescribeConfigs. */
export async function describeTopicLimits(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const limits = new Map<string, number>();
  if (topics.length === 0) return limits;
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topics.map((name) => ({ type: TOPIC_RESOURCE, name, configNames: ['max.message.bytes'] })),
  });
  for (const r of resources) {
    const value = Number(r.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue);
    if (Number.isInteger(value) && value > 0) limits.set(r.resourceName, value);
  }
  return limits;
}

/** The broker's `message.max.bytes` (asked of one broker: a cluster's brokers share it in practice); throws when refused. */
export async function describeBrokerMessageMaxBytes(admin: Admin): Promise<number> {
  const { brokers } = await admin.describeCluster();
  const nodeId = brokers[0]?.nodeId;
  if (nodeId === undefined) throw new Error('the cluster named no broker');
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: BROKER_RESOURCE, name: String(nodeId), configNames: ['message.max.bytes'] }],
  });
  const value = Number(resources[0]?.configEntries.find((e) => e.configName === 'message.max.bytes')?.configValue);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`broker ${nodeId} gave no message.max.bytes`);
  return value;
}

/**
 * Logs what ensureTopics found about the copy topics: one warning per copy topic whose
 * `max.message.bytes` is below what a copy may need, with the command that raises it, and one
 * when the limits could not be read. A refused copy does not stall its partition (the event
 * goes to the DLQ, or a DLQ record without the value stands for it), but the copy loses what
 * it would have carried: worth fixing before it happens.
 */
export function warnAboutCopyTopicLimits(sizing: CopyTopicSizing | undefined, logger: Logger, fields: Record<string, unknown>): void {
  if (!sizing) return;
  for (const { topic, maxMessageBytes } of sizing.shortfalls) {
    logger.warn(
      { ...fields, topic, maxMessageBytes, neededBytes: sizing.neededBytes },
      `topic ${topic} accepts ${maxMessageBytes} bytes (max.message.bytes), less than a retry or DLQ copy of the largest event may need (${sizing.neededBytes}); ` +
        `raise it: kafka-configs --bootstrap-server <broker> --alter --entity-type topics --entity-name ${topic} --add-config max.message.bytes=${sizing.neededBytes}`,
    );
  }
  if (sizing.unknownBecause !== undefined) {
    logger.warn(
      { ...fields, err: sizing.unknownBecause },
      sizing.neededBytes === undefined
        ? 'could not read max.message.bytes of the event topics or the broker (DescribeConfigs); retry and DLQ topics created now have the broker default, and their limits are not checked'
        : `could not read every max.message.bytes (DescribeConfigs); retry and DLQ topics are sized and checked against ${sizing.neededBytes} bytes from what could be read`,
    );
  }
}
