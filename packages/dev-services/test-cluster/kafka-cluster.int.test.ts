import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { KafkaCluster, KafkaClusterError } from '../src/kafka-cluster.js';
import { uniqueName, waitFor } from '../src/wait.js';

// Proves the local 3-node cluster (scripts/kafka-local.sh cluster-*) is what the fault matrix
// and the cluster tests rely on: RF 3 by default, min ISR 2, acks=-1 produce that survives the
// loss of a partition leader, and a restarted node back in the ISR. Run alone with
// `pnpm test:cluster` (starts the cluster on 29092/29094/29096, or reuses a running one).
const cluster = new KafkaCluster({ log: (line) => console.error(line) });
const topic = uniqueName('cluster-proof.');
let admin: Admin;
let producer: Producer;

beforeAll(async () => {
  await cluster.start();
  const kafka = new Kafka({ brokers: cluster.brokers, clientId: 'cluster-proof', logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  // No replication factor given: the cluster's default.replication.factor=3 must apply.
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
}, 240_000);

afterAll(async () => {
  await producer?.disconnect();
  await admin?.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin?.disconnect();
  await cluster.stop();
}, 120_000);

const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ key: `k-${from + i}`, value: String(from + i) }));
const stored = async (partition: number) => Number((await admin.fetchTopicOffsets(topic)).find((p) => p.partition === partition)!.high);

describe('the local 3-node Kafka cluster', () => {
  it('rejects a node id it does not have, with a typed error', () => {
    expect(() => cluster.portOf(4)).toThrow(KafkaClusterError);
    expect(() => cluster.portOf(0)).toThrow(/unknown node id 0: the local cluster has nodes 1, 2, 3/);
  });

  it('creates topics with 3 replicas in sync and min.insync.replicas=2', async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(topics[0]!.partitions).toHaveLength(3);
    for (const p of topics[0]!.partitions) {
      expect([...p.replicas].sort()).toEqual([1, 2, 3]);
      expect([...p.isr].sort()).toEqual([1, 2, 3]);
    }
    const configs = await admin.describeConfigs({
      resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['min.insync.replicas'] }],
      includeSynonyms: false,
    });
    expect(configs.resources[0]!.configEntries.find((e) => e.configName === 'min.insync.replicas')?.configValue).toBe('2');
  });

  it('keeps accepting acks=-1 writes when the leader of a partition stops, and takes the node back into the ISR', async () => {
    await producer.send({ topic, acks: -1, messages: batch(0, 20).map((m) => ({ ...m, partition: 0 })) });
    expect(await stored(0)).toBe(20);

    const leader = await cluster.leaderOf(topic, 0);
    await cluster.stopNode(leader, 'SIGTERM');
    // A controlled shutdown hands leadership over before the JVM exits.
    const next = await waitFor(
      async () => {
        const l = await cluster.leaderOf(topic, 0);
        return l !== leader ? l : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, message: `a new leader for ${topic}/0` },
    );
    expect(next).not.toBe(leader);
    // Two replicas left = min.insync.replicas: acks=-1 writes still succeed.
    const { topics: during } = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(during[0]!.partitions.find((p) => p.partitionId === 0)!.isr).not.toContain(leader);
    await producer.send({ topic, acks: -1, messages: batch(20, 20).map((m) => ({ ...m, partition: 0 })) });
    expect(await stored(0)).toBe(40);

    await cluster.startNode(leader, { topics: [topic] });
    const { topics: after } = await admin.fetchTopicMetadata({ topics: [topic] });
    for (const p of after[0]!.partitions) expect([...p.isr].sort()).toEqual([1, 2, 3]);
    expect(await cluster.underReplicated()).toEqual([]);
  });
});
