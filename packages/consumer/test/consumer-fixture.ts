import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Kafka, logLevel } from 'kafkajs';
import { encodeEvent, TopicRouter, uuidv7 } from '@eventbus/core';
import { createTopicsAndWait, KafkaPublisher } from '@eventbus/kafka';
import type { EventMetric } from '@eventbus/monitor';
import { KafkaCollector, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { DlqMirror, type DlqMirrorOptions } from '@eventbus/dead-letters';
import { EventConsumer, type EventConsumerOptions, type SubscriptionOptions } from '../src/index.js';

/** One test's event to publish; the rest of the event is filled in. */
export interface TestEvent {
  tenantId: string;
  eventType: string;
  payload?: unknown;
  id?: string;
}

/** A database, Kafka clients and helpers of one test file; each test takes its own prefix and group ids. */
export async function consumerFixture(label: string) {
  const database: TestDatabase = await testDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 8 });
  // Idle clients get 57P01 when the database is dropped WITH (FORCE) at the end; nothing to do then.
  pool.on('error', () => undefined);
  const { kafkaBrokers } = testServices();
  const publisher = new KafkaPublisher({ brokers: kafkaBrokers, topicPartitions: 3 });
  await publisher.connect();
  const admin = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const running: Array<{ stop(): Promise<void> }> = [];

  return {
    database,
    pool,
    db: drizzle(pool),
    brokers: kafkaBrokers,
    publisher,
    /** A topic prefix no other test uses. */
    prefix: () => `${uniqueName(`${label}.`)}.`,
    group: (name: string) => uniqueName(`${name}-`),
    /** Publishes an already-encoded event the way the relay does (topic by routing, key = tenant). */
    async publish(prefix: string, events: TestEvent[]): Promise<string[]> {
      const router = new TopicRouter({ prefix });
      const messages = events.map((e) => {
        const id = e.id ?? uuidv7();
        const wire = encodeEvent({
          id,
          tenantId: e.tenantId,
          projectId: null,
          eventKey: `key-${id}`,
          eventType: e.eventType,
          version: 1,
          payloadJson: JSON.stringify(e.payload ?? {}),
          correlationId: id,
          causationId: null,
          createdAt: new Date(),
          traceparent: null,
          tracestate: null,
        });
        return { topic: router.topicFor(e.eventType), ...wire };
      });
      await publisher.publish(messages);
      return messages.map((m) => m.headers.ce_id!);
    },
    async consumer(options: Partial<EventConsumerOptions> & { groupId: string }, subscriptions: SubscriptionOptions<any>[]) {
      const consumer = new EventConsumer({ brokers: kafkaBrokers, fromBeginning: true, topicPartitions: 3, onMetric: () => {}, ...options });
      for (const s of subscriptions) consumer.subscribe(s);
      running.push(consumer);
      await consumer.start();
      return consumer;
    },
    async mirror(options: Partial<DlqMirrorOptions>) {
      const mirror = new DlqMirror({ brokers: kafkaBrokers, pool, groupId: uniqueName('mirror-'), topicPartitions: 3, ...options });
      running.push(mirror);
      await mirror.start();
      return mirror;
    },
    async collect(topics: string[]) {
      const collector = await new KafkaCollector(kafkaBrokers, topics).start();
      running.push(collector);
      return collector;
    },
    /** Messages ever written to a topic (sum of its partitions' high watermarks). */
    async messageCount(topic: string): Promise<number> {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    },
    /** Each partition's end (high watermark: the offset the next message gets), by partition. */
    async topicEnds(topic: string): Promise<number[]> {
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.sort((a, b) => a.partition - b.partition).map((p) => Number(p.high));
    },
    /** The group's committed offsets (next offset to read) per partition of a topic; -1 where none. */
    async committedOffsets(groupId: string, topic: string): Promise<number[]> {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return (committed?.partitions ?? []).sort((a, b) => a.partition - b.partition).map((p) => Number(p.offset));
    },
    /** Creates topics with their own settings (a partition count, a max.message.bytes) before a consumer creates them its way. */
    async createTopics(topics: Array<{ topic: string; numPartitions?: number; maxMessageBytes?: number }>): Promise<void> {
      await createTopicsAndWait(
        admin,
        topics.map(({ topic, numPartitions, maxMessageBytes }) => ({
          topic,
          numPartitions: numPartitions ?? 1,
          ...(maxMessageBytes === undefined ? {} : { configEntries: [{ name: 'max.message.bytes', value: String(maxMessageBytes) }] }),
        })),
      );
    },
    /** Deletes a partition's records below `offset` (admin DeleteRecords): what retention does to old records. */
    async deleteRecordsBefore(topic: string, partition: number, offset: string): Promise<void> {
      await admin.deleteTopicRecords({ topic, partitions: [{ partition, offset }] });
    },
    /** Deletes a topic and creates it again, empty (one partition): offsets start at 0 again. */
    async recreateTopic(topic: string): Promise<void> {
      await admin.deleteTopics({ topics: [topic] });
      await waitFor(async () => !(await admin.listTopics()).includes(topic) || undefined, { timeoutMs: 20_000, message: `${topic} deleted` });
      // The broker may still be removing the old partitions: TOPIC_ALREADY_EXISTS for a moment.
      await waitFor(
        () =>
          createTopicsAndWait(admin, [{ topic, numPartitions: 1 }]).then(
            () => true,
            () => undefined,
          ),
        { timeoutMs: 20_000, message: `${topic} created again` },
      );
    },
    /** The consumer groups the broker knows whose id starts with `prefix`. */
    async groupsStartingWith(prefix: string): Promise<string[]> {
      const { groups } = await admin.listGroups();
      return groups.map((g) => g.groupId).filter((id) => id.startsWith(prefix));
    },
    /** A topic's effective max.message.bytes. */
    async maxMessageBytes(topic: string): Promise<number> {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: topic, configNames: ['max.message.bytes'] }],
      });
      return Number(resources[0]!.configEntries.find((e) => e.configName === 'max.message.bytes')!.configValue);
    },
    /** Stops what the test started (consumers first, so their last publishes land). */
    async reset() {
      await Promise.all(running.splice(0).map((r) => r.stop()));
    },
    async close() {
      await Promise.all(running.splice(0).map((r) => r.stop()));
      await publisher.disconnect();
      await admin.disconnect();
      await pool.end();
      await database.drop();
    },
  };
}

/** A logger that keeps every line, for asserting what a consumer or mirror logged. */
export function recordingLogger() {
  const lines: Array<{ level: 'debug' | 'info' | 'warn' | 'error'; fields: Record<string, unknown>; message: string }> = [];
  const at = (level: (typeof lines)[number]['level']) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

/** Collects metrics per event id, for asserting the statuses a consumer recorded. */
export function metricLog() {
  const all: EventMetric[] = [];
  return {
    all,
    onMetric: (m: EventMetric) => void all.push(m),
    of: (eventId: string) => all.filter((m) => m.eventId === eventId).map((m) => `${m.status}:${m.retryCount}`),
  };
}
