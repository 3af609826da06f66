import { describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { uniqueName, waitFor } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { createTopicsAndWait, KafkaPublisher, PublishError } from '@eventbus/kafka';
import { publishBisecting, type BisectItem } from '../src/publish-bisecting.js';

// The first send to partitions created a moment before: the broker may answer
// NOT_LEADER_OR_FOLLOWER for some partitions of the request while it writes the others.
// Upstream kafkajs re-sent the whole request, writing the partitions that had succeeded twice
// (16 messages sent, 24 stored). The patched client re-sends only the refused partitions,
// and the idempotent producer would drop a repeated batch even if one were re-sent.
describe('the first publish to topics created a moment before', () => {
  for (const idempotent of [false, true]) {
    it(`stores each message exactly once, in order per key (idempotent: ${idempotent})`, async () => {
      const brokers = testServices().kafkaBrokers;
      const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const publisher = new KafkaPublisher({ brokers, topicPartitions: 12, idempotent });
      await publisher.connect();
      // Deleted once the publisher is gone: a topic deleted under a publisher that sent to it
      // is a case of its own (tenant-isolation.int.test.ts).
      const used: string[] = [];
      try {
        for (let round = 0; round < 3; round++) {
          const topics = [uniqueName('first-send.'), uniqueName('first-send.')];
          used.push(...topics);
          const messages = topics.flatMap((topic) => Array.from({ length: 48 }, (_, i) => ({ topic, key: `tenant-${i % 16}`, value: `${i}`, headers: {} })));
          const positions = await publisher.publish(messages);
          expect(positions).toHaveLength(messages.length);
          for (const topic of topics) {
            const offsets = await admin.fetchTopicOffsets(topic);
            expect(offsets.reduce((sum, o) => sum + Number(o.high), 0)).toBe(48);
            // Per key, positions rise in the order the messages were given.
            const byKey = new Map<string, bigint[]>();
            for (const [i, m] of messages.entries()) if (m.topic === topic) byKey.set(m.key, [...(byKey.get(m.key) ?? []), BigInt(positions[i]!.offset)]);
            for (const seq of byKey.values()) expect(seq).toEqual([...seq].sort((a, b) => (a < b ? -1 : 1)));
          }
        }
      } finally {
        await publisher.disconnect();
        await admin.deleteTopics({ topics: used }).catch(() => undefined);
        await admin.disconnect();
      }
    }, 60_000);
  }

  it('a request Kafka refuses for one partition does not write the acknowledged partitions twice', async () => {
    const brokers = testServices().kafkaBrokers;
    const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const roomy = uniqueName('refused.');
    const tight = uniqueName('refused.');
    // createTopicsAndWait, not kafkajs' waitForLeaders: on a busy broker the metadata can say
    // "does not host this topic-partition" for a moment, which waitForLeaders does not retry.
    await createTopicsAndWait(admin, [
      { topic: roomy, numPartitions: 1 },
      // A batch over 4 KB is refused (MESSAGE_TOO_LARGE) on this topic only.
      { topic: tight, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] },
    ]);
    const publisher = new KafkaPublisher({ brokers, createTopics: false });
    await publisher.connect();
    try {
      const items: BisectItem[] = [
        { message: { topic: roomy, key: 'k', value: 'r1', headers: {} } },
        { message: { topic: tight, key: 'k', value: 'x'.repeat(8000), headers: {} } },
        { message: { topic: roomy, key: 'k', value: 'r2', headers: {} } },
        { message: { topic: tight, key: 'k', value: 't1', headers: {} } },
      ];
      await publishBisecting(publisher, items);
      expect(items.map((i) => Boolean(i.error))).toEqual([false, true, false, false]);
      expect(items[1]!.error).toMatchObject({ kind: 'rejected', reason: 'too-large' });
      const stored = async (topic: string) => (await admin.fetchTopicOffsets(topic)).reduce((sum, o) => sum + Number(o.high), 0);
      // The roomy topic's partition was acknowledged in the refused request: r1 and r2 once.
      expect(await stored(roomy)).toBe(2);
      expect(await stored(tight)).toBe(1);
      await admin.deleteTopics({ topics: [roomy, tight] });
    } finally {
      await publisher.disconnect();
      await admin.disconnect();
    }
  }, 60_000);

  it('a message the broker itself refuses as too large (the topic limit lowered since the publisher read it) is rejected with reason too-large', async () => {
    const brokers = testServices().kafkaBrokers;
    const admin = new Kafka({ brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const topic = uniqueName('lowered.');
    await createTopicsAndWait(admin, [{ topic, numPartitions: 1 }]);
    const publisher = new KafkaPublisher({ brokers, createTopics: false });
    await publisher.connect();
    try {
      // The publisher reads the topic's limit (about 1 MB) with its first send and keeps it for minutes.
      await publisher.publish([{ topic, key: 'k', value: 'small', headers: {} }]);
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: topic, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }],
      });
      const refused = await waitFor(
        async () => {
          try {
            await publisher.publish([{ topic, key: 'k', value: 'x'.repeat(8000), headers: {} }]);
            return undefined; // the broker had not applied the new limit yet
          } catch (error) {
            return error;
          }
        },
        { timeoutMs: 20_000, message: 'the broker refusing the large message' },
      );
      expect(refused).toBeInstanceOf(PublishError);
      expect(refused).toMatchObject({ kind: 'rejected', reason: 'too-large' });
      expect((refused as PublishError).refusals).toBeUndefined(); // sent and refused by the broker, not refused before the send
      await admin.deleteTopics({ topics: [topic] });
    } finally {
      await publisher.disconnect();
      await admin.disconnect();
    }
  }, 60_000);
});
