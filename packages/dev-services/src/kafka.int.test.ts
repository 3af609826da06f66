import { describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { createTopicsAndWait } from '@eventbus/kafka';
import { testServices } from './test-env.js';
import { uniqueName, waitFor } from './wait.js';

// Proves kafkajs 2.2.4 (which predates Kafka 4's removal of old protocol versions, KIP-896)
// works against the broker the tests use: admin, idempotent acks=-1 produce, group consume.
describe('kafkajs against the real broker', () => {
  it('creates a topic, produces with acks=-1 and headers, and consumes in a group', async () => {
    const kafka = new Kafka({ brokers: testServices().kafkaBrokers, clientId: 'compat-test', logLevel: logLevel.WARN });
    const topic = uniqueName('compat.');
    const admin = kafka.admin();
    await admin.connect();
    // The project's createTopicsAndWait: kafkajs' waitForLeaders alone does not retry a broker
    // that says "does not host this topic-partition" for a moment after the create (busy machines).
    await createTopicsAndWait(admin, [{ topic, numPartitions: 3 }]);

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const messages = Array.from({ length: 30 }, (_, i) => ({ key: `tenant-${i % 3}`, value: JSON.stringify({ i }), headers: { ce_id: `id-${i}` } }));
    await producer.send({ topic, acks: -1, messages });

    const consumer = kafka.consumer({ groupId: uniqueName('compat-group-') });
    const received: Array<{ key: string; i: number; ceId: string }> = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        received.push({ key: message.key!.toString(), i: JSON.parse(message.value!.toString()).i, ceId: message.headers!.ce_id!.toString() });
      },
    });
    await waitFor(() => received.length === 30, { timeoutMs: 30_000, message: '30 messages' });
    await consumer.disconnect();
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets(topic);
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();

    expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(30);
    // Same key, same partition, in order.
    for (const tenant of ['tenant-0', 'tenant-1', 'tenant-2']) {
      const seq = received.filter((r) => r.key === tenant).map((r) => r.i);
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
      expect(seq).toHaveLength(10);
    }
    expect(new Set(received.map((r) => r.ceId)).size).toBe(30);
  });
});
