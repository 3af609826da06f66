import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, uniqueName } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { ConsumerGroupLagReader } from '@eventbus/kafka';

// @eventbus/kafka's lag reader as the console's lag panel uses it (tested here: dev-services depends on
// @eventbus/kafka, so the kafka package's own tests cannot use it). The lag an operator reads: committed offsets against high
// watermarks, per partition, on a real broker.

const topic = uniqueName('lag-');
const group = uniqueName('lag-group-');
let reader: ConsumerGroupLagReader;
let kafka: Kafka;

beforeAll(async () => {
  const { kafkaBrokers: brokers } = testServices();
  await createTopics(brokers, [{ topic, numPartitions: 2 }]);
  kafka = new Kafka({ brokers, clientId: 'lag-test', logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 5 }, (_, i) => ({ partition: 0, value: `a${i}` })) });
  await producer.send({ topic, messages: Array.from({ length: 3 }, (_, i) => ({ partition: 1, value: `b${i}` })) });
  await producer.disconnect();
  reader = new ConsumerGroupLagReader({ brokers });
});
afterAll(async () => {
  await reader?.disconnect();
  await reader?.disconnect(); // idempotent
});

describe('ConsumerGroupLagReader', () => {
  it('reports committed offset, end and lag per partition, and their sums', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      // The group read 2 of partition 0's 5 records and all 3 of partition 1's.
      await admin.setOffsets({
        groupId: group,
        topic,
        partitions: [
          { partition: 0, offset: '2' },
          { partition: 1, offset: '3' },
        ],
      });
    } finally {
      await admin.disconnect();
    }
    const [lag] = await reader.lag([group]);
    expect(lag).toEqual({
      groupId: group,
      partitions: [
        { topic, partition: 0, committed: 2, end: 5, lag: 3 },
        { topic, partition: 1, committed: 3, end: 3, lag: 0 },
      ],
      totalLag: 3,
      committedTotal: 5,
    });
  });

  it('gives a group that committed nothing no partitions', async () => {
    expect(await reader.lag([uniqueName('never-')])).toEqual([expect.objectContaining({ partitions: [], totalLag: 0, committedTotal: 0 })]);
  });
});
