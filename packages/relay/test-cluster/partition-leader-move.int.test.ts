import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { KafkaCluster, uniqueName } from '@eventbus/dev-services';
import { KafkaPublisher } from '@eventbus/kafka';

// A send whose partitions are led by two brokers, where the leadership of partition 1 has
// just moved from node 2 to node 1 (a preferred-leader election, every node up; in a rolling
// restart the same happens at every controlled shutdown) and the client's cached metadata
// does not know it yet. The first attempt writes partition 0 on node 1, and node 2 answers
// NOT_LEADER_OR_FOLLOWER for partition 1; the retry must send partition 1 to node 1 even
// though node 1 has already answered for this send. Plain kafkajs 2.2.4 skipped it and
// resolved with partition 1's messages never written (kafkajs #1303): the silent loss seen in
// rolling restarts.
describe('a partition that moves to a broker that already answered (3-node cluster)', () => {
  const cluster = new KafkaCluster({ log: (line) => console.error(line) });
  let admin: Admin;

  beforeAll(async () => {
    await cluster.start();
    admin = new Kafka({ brokers: cluster.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
  }, 240_000);

  afterAll(async () => {
    await admin?.disconnect();
    await cluster.stop();
  }, 240_000);

  /** A topic whose partition 0 is led by node 1 and partition 1 by node 2, both replicated on all three. */
  async function topicLedBy1And2(): Promise<string> {
    const topic = uniqueName('leader-move.');
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          replicaAssignment: [
            { partition: 0, replicas: [1, 2, 3] },
            { partition: 1, replicas: [2, 1, 3] },
          ],
        },
      ],
    });
    await cluster.waitForFullIsr([topic], 60_000);
    expect(await cluster.leaderOf(topic, 0)).toBe(1);
    expect(await cluster.leaderOf(topic, 1)).toBe(2);
    return topic;
  }

  async function storedPerPartition(topic: string): Promise<number[]> {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.sort((a, b) => a.partition - b.partition).map((o) => Number(o.high) - Number(o.low));
  }

  it('patched kafkajs writes every partition of the send, and each exactly once', async () => {
    const topic = await topicLedBy1And2();
    const kafka = new Kafka({ brokers: cluster.brokers, logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 300 } });
    const producer = kafka.producer({ idempotent: false, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      // Warm the producer's metadata while node 2 still leads partition 1.
      await producer.send({
        topic,
        acks: -1,
        messages: [
          { partition: 0, value: 'warm' },
          { partition: 1, value: 'warm' },
        ],
      });
      await cluster.moveLeader(topic, 1, 1);
      const messages = Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, value: `m${i}` }));
      const answers = await producer.send({ topic, acks: -1, messages });
      expect(answers.map((a) => a.partition).sort()).toEqual([0, 1]);
      expect(await storedPerPartition(topic)).toEqual([6, 6]);
    } finally {
      await producer.disconnect();
    }
  }, 240_000);

  it('KafkaPublisher returns a position for every message and stores none twice', async () => {
    const topic = await topicLedBy1And2();
    const publisher = new KafkaPublisher({ brokers: cluster.brokers, createTopics: false });
    await publisher.connect();
    try {
      // Keys whose murmur2 partition (2 partitions) is 0 and 1: found by asking the publisher.
      const warm = await publisher.publish(['a', 'b', 'c', 'd'].map((key) => ({ topic, key, value: 'warm', headers: {} })));
      const keyOf = new Map(warm.map((p, i) => [p.partition, ['a', 'b', 'c', 'd'][i]!]));
      expect([...keyOf.keys()].sort()).toEqual([0, 1]);
      await cluster.moveLeader(topic, 1, 1);
      const messages = Array.from({ length: 10 }, (_, i) => ({ topic, key: keyOf.get(i % 2)!, value: `m${i}`, headers: { n: String(i) } }));
      const positions = await publisher.publish(messages);
      expect(positions).toHaveLength(10);
      const before = await storedPerPartition(topic);
      // Every position is a stored offset of the partition its key maps to, none repeated.
      positions.forEach((p, i) => {
        expect(p.partition).toBe(i % 2);
        expect(Number(p.offset)).toBeLessThan(before[p.partition]!);
      });
      expect(new Set(positions.map((p) => `${p.partition}:${p.offset}`)).size).toBe(10);
      expect(before.reduce((a, b) => a + b, 0)).toBe(4 + 10);
    } finally {
      await publisher.disconnect();
    }
  }, 240_000);
});
