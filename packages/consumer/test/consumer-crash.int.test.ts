import { afterAll, describe, expect, it } from 'vitest';
import { Kafka, KafkaJSNonRetriableError, logLevel } from 'kafkajs';
import { createTopics, uniqueName, waitFor } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { KafkajsConsumerClient } from '@eventbus/kafka';

// kafkajs restarts its consumer after a crash only when the error is retriable. After any
// other one (KafkaJSGroupCoordinatorNotFound and KafkaJSTimeout are among them, both seen
// around network cuts) its consumer stays down while the process lives on. The client
// starts a fresh one. Provoked here with a non-retriable error escaping the batch handler.
const { kafkaBrokers } = testServices();
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops) await stop();
});

describe('KafkajsConsumerClient after a crash kafkajs does not restart from', () => {
  it('starts a fresh consumer in the same group, which gets the unfinished message again', { timeout: 60_000 }, async () => {
    const topic = `${uniqueName('crash.')}.order`;
    await createTopics(kafkaBrokers, [{ topic, numPartitions: 1 }]);
    const crashes: Array<{ message: string; restartedBy: string }> = [];
    const client = new KafkajsConsumerClient({
      brokers: kafkaBrokers,
      groupId: uniqueName('crash-'),
      clientId: 'crash-test',
      concurrency: 1,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
      onCrash: (error, { restartedBy }) => crashes.push({ message: (error as Error).message, restartedBy }),
    });
    stops.push(() => client.stop());
    const seen: string[] = [];
    let thrown = false;
    await client.start([{ topics: [topic], fromBeginning: true }], async (messages, control) => {
      for (const message of messages) {
        seen.push(message.value!.toString());
        if (!thrown) {
          thrown = true;
          throw new KafkaJSNonRetriableError('something kafkajs will not retry');
        }
        control.resolveOffset(message.offset);
      }
    });

    const producer = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    stops.push(() => producer.disconnect());
    await producer.send({ topic, acks: -1, messages: [{ value: 'first' }, { value: 'second' }] });

    await waitFor(() => seen.includes('second'), { timeoutMs: 45_000, message: `the messages after the crash (seen: ${seen.join(', ')})` });
    expect(crashes[0]).toMatchObject({ message: 'something kafkajs will not retry', restartedBy: 'client' });
    // The crashed batch's message was not resolved: the fresh consumer reads it again.
    expect(seen.filter((v) => v === 'first').length).toBe(2);
  });

  it('stop() during the restart ends it: no member is left in the group afterwards', { timeout: 60_000 }, async () => {
    const topic = `${uniqueName('crash.')}.order`;
    const groupId = uniqueName('crash-stop-');
    await createTopics(kafkaBrokers, [{ topic, numPartitions: 1 }]);
    let crashed = false;
    const client = new KafkajsConsumerClient({
      brokers: kafkaBrokers,
      groupId,
      clientId: 'crash-stop-test',
      concurrency: 1,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
      onCrash: () => (crashed = true),
    });
    await client.start([{ topics: [topic], fromBeginning: true }], async () => {
      throw new KafkaJSNonRetriableError('crash every time');
    });
    const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    stops.push(() => producer.disconnect());
    await producer.send({ topic, acks: -1, messages: [{ value: 'poison' }] });
    await waitFor(() => crashed, { timeoutMs: 30_000, message: 'the crash' });
    // The restart waits out its backoff now; stop() must end it rather than race it.
    await client.stop();
    await new Promise((r) => setTimeout(r, 3000)); // longer than the restart's first backoff
    const admin = kafka.admin();
    await admin.connect();
    stops.push(() => admin.disconnect());
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups[0]!.members).toEqual([]);
  });
});
