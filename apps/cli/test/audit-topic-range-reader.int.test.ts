import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTopics, uniqueName, waitFor } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { TopicRangeReader, type RangeRecord } from '@eventbus/kafka';

// @eventbus/kafka's TopicRangeReader as `eventbus audit` uses it (tested beside the audit's tests:
// dev-services depends on @eventbus/kafka, so the kafka package's own tests cannot use it).
// Its throwaway group can rebalance or restart mid-read (a join timing out on a loaded broker):
// each join must resume every partition where the read stopped, or records are read twice
// (the audit would report duplicates that are not on Kafka).

const topic = uniqueName('range-');
const clientId = uniqueName('range-reader-');
let kafka: Kafka;
let brokers: string[];
const send = async (partition: number, from: number, count: number) => {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ partition, key: `k${from + i}`, value: `v${from + i}` })) });
  await producer.disconnect();
};

beforeAll(async () => {
  brokers = testServices().kafkaBrokers;
  await createTopics(brokers, [{ topic, numPartitions: 3 }]);
  kafka = new Kafka({ brokers, clientId: 'range-test', logLevel: logLevel.NOTHING });
  for (const partition of [0, 1, 2]) await send(partition, 0, 100);
});

describe('TopicRangeReader', () => {
  let intruder: Consumer | undefined;
  afterAll(async () => intruder?.disconnect());

  it('hands over each record of the ranges once, across a rebalance of its group in the middle of the read', async () => {
    const reader = new TopicRangeReader({ brokers, clientId });
    await reader.connect();
    const seen: RangeRecord[] = [];
    // Partition 0's range ends 100 records past what is on it: the read waits there until the test writes them.
    const read = reader.read(
      [
        { topic, partition: 0, start: '0', end: '200' },
        { topic, partition: 1, start: '0', end: '100' },
        { topic, partition: 2, start: '10', end: '100' },
      ],
      async (records) => {
        seen.push(...records);
      },
    );
    try {
      await waitFor(() => seen.length === 290, { timeoutMs: 20_000, message: 'the 290 records on Kafka read' });
      // Another member joins the reader's group (found by its client id) and leaves: two rebalances.
      const admin = kafka.admin();
      await admin.connect();
      let groupId = '';
      await waitFor(
        async () => {
          const { groups } = await admin.listGroups();
          const described = await admin.describeGroups(groups.map((g) => g.groupId).filter((g) => g.startsWith('eventbus-audit-')));
          groupId = described.groups.find((g) => g.members.some((m) => m.clientId === clientId))?.groupId ?? '';
          return groupId !== '';
        },
        { timeoutMs: 10_000, message: "the reader's group" },
      );
      intruder = kafka.consumer({ groupId });
      await intruder.connect();
      await intruder.subscribe({ topics: [topic] });
      let joined = false;
      intruder.on(intruder.events.GROUP_JOIN, () => {
        joined = true;
      });
      await intruder.run({ autoCommit: false, eachMessage: async () => undefined });
      await waitFor(() => joined, { timeoutMs: 30_000, message: 'the second member in the group' });
      await intruder.disconnect();
      intruder = undefined;
      // The reader alone again in a stable group: then the rest of partition 0.
      await waitFor(
        async () => {
          const [group] = (await admin.describeGroups([groupId])).groups;
          return group?.state === 'Stable' && group.members.length === 1;
        },
        { timeoutMs: 30_000, message: 'the reader alone in its group again' },
      );
      await admin.disconnect();
      await send(0, 100, 100);
      await read;
    } finally {
      await reader.disconnect();
    }
    const positions = seen.map((r) => `${r.partition}:${r.offset}`);
    expect(new Set(positions).size, 'records handed over twice').toBe(positions.length);
    expect(positions).toHaveLength(390);
    expect(seen.filter((r) => r.partition === 2).map((r) => Number(r.offset))).toEqual(Array.from({ length: 90 }, (_, i) => 10 + i));
    expect(seen.filter((r) => r.partition === 0).map((r) => r.key)).toEqual(Array.from({ length: 200 }, (_, i) => `k${i}`));
  }, 120_000);
});
