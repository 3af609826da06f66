import { afterAll, describe, expect, it } from 'vitest';
import { Kafka, KafkaJSNonRetriableError, logLevel } from 'kafkajs';
import { createTopics, uniqueName, waitFor } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { KafkajsConsumerClient, type BatchHandler } from '@eventbus/kafka';

// Two ways a member leaves or rejoins its group that kafkajs starts by itself, not through a
// heartbeat's rebalance: a fetch that finds the cluster changed (stale metadata at a leader
// change, partitions added to a topic), and a crash. Here on a real broker, with the client the
// consumer runs on.
const { kafkaBrokers } = testServices();
const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
const stops: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
});

/** How long the first member's batch goes on by itself: long enough for a rejoin and a rebalance meanwhile. */
const SLOW_MS = 8000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function producer() {
  const p = kafka.producer();
  await p.connect();
  stops.push(() => p.disconnect());
  return p;
}

describe('KafkajsConsumerClient when kafkajs makes the member rejoin after a fetch', () => {
  it('waits for a batch that went on by itself before rejoining: its partition moves to the other member only after its message was finished and committed', {
    timeout: 90_000,
  }, async () => {
    // The round-robin assigner deals [grow/0, work/0, work/1] over the two members sorted by
    // member id: one gets grow/0 and work/1, the other work/0. With a second partition of `grow`,
    // [grow/0, grow/1, work/0, work/1]: both partitions of `work` change hands.
    const grow = uniqueName('rejoin-grow.');
    const work = uniqueName('rejoin-work.');
    await createTopics(kafkaBrokers, [
      { topic: grow, numPartitions: 1 },
      { topic: work, numPartitions: 2 },
    ]);
    const groupId = uniqueName('rejoin-');
    const running = new Map<string, string>(); // topic|partition -> member whose handler runs there
    const handled: Array<{ member: string; value: string; partition: string }> = [];
    const overlaps: string[] = [];
    let slowStarted = false;
    let slowEnded = false;
    const handler =
      (member: string): BatchHandler =>
      async (messages, control) => {
        for (const message of messages) {
          const partition = `${message.topic}|${message.partition}`;
          const value = message.value!.toString();
          const other = running.get(partition);
          if (other !== undefined) overlaps.push(`${member} got ${value} of ${partition} while ${other}'s handler ran there`);
          handled.push({ member, value, partition });
          if (value === 'slow') {
            slowStarted = true;
            running.set(partition, member);
            // Goes on by itself, heartbeating, as BatchProcessor does with a slow handler.
            const slow = (async () => {
              const until = Date.now() + SLOW_MS;
              while (Date.now() < until) {
                await sleep(300);
                await control.heartbeat().catch(() => undefined);
              }
              running.delete(partition);
              slowEnded = true;
              control.resolveOffset(message.offset);
            })();
            control.detach!(slow);
            return;
          }
          control.resolveOffset(message.offset);
        }
      };
    const member = (clientId: string, metadataMaxAge?: number) => {
      const client = new KafkajsConsumerClient({
        brokers: kafkaBrokers,
        groupId,
        clientId,
        concurrency: 2,
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 500,
        // Only member a notices the added partition (its metadata is refreshed every second): the
        // rejoin starts from its fetch, not from a heartbeat.
        ...(metadataMaxAge === undefined ? {} : { kafkajsConsumer: { metadataMaxAge } }),
      });
      stops.push(() => client.stop());
      return client;
    };
    const a = member('rejoin-a', 1000);
    await a.start([{ topics: [grow, work], fromBeginning: true }], handler('a'));
    const b = member('rejoin-b');
    await b.start([{ topics: [grow, work], fromBeginning: true }], handler('b'));

    // The slow message goes to a's partition of `work`.
    const send = await producer();
    await send.send({ topic: work, acks: -1, messages: [{ value: 'owner', partition: 0 }] });
    await waitFor(() => handled.some((h) => h.value === 'owner'), { timeoutMs: 30_000, message: 'the owner of work/0 found' });
    const slowPartition = handled.find((h) => h.value === 'owner')!.member === 'a' ? 0 : 1;
    await send.send({ topic: work, acks: -1, messages: [{ value: 'slow', partition: slowPartition }] });
    await waitFor(() => slowStarted, { timeoutMs: 30_000, message: 'the slow message handled' });
    expect(
      handled.find((h) => h.value === 'slow'),
      "the slow message on a's partition",
    ).toEqual({ member: 'a', value: 'slow', partition: `${work}|${slowPartition}` });
    await sleep(300); // past the detach

    const admin = kafka.admin();
    await admin.connect();
    stops.push(() => admin.disconnect());
    await admin.createPartitions({ topicPartitions: [{ topic: grow, count: 2 }] });

    await waitFor(() => slowEnded, { timeoutMs: 30_000, message: "a's slow batch ended" });
    // The new assignment in place (b owns the slow partition now): a message sent there is b's.
    await waitFor(
      async () => {
        await send.send({ topic: work, acks: -1, messages: [{ value: 'probe', partition: slowPartition }] });
        await sleep(1000);
        return handled.some((h) => h.value === 'probe' && h.member === 'b');
      },
      { timeoutMs: 45_000, intervalMs: 100, message: `work/${slowPartition} moved to b` },
    );
    expect(overlaps).toEqual([]);
    // Finished and committed by a before the partition moved: b never got it.
    expect(handled.filter((h) => h.value === 'slow').map((h) => h.member)).toEqual(['a']);
  });
});

describe('KafkajsConsumerClient when kafkajs stops its consumer itself (a crash)', () => {
  it('commits what the batch finished before the member leaves: only the unfinished message is delivered again', { timeout: 60_000 }, async () => {
    const topic = uniqueName('rejoin-crash.');
    await createTopics(kafkaBrokers, [{ topic, numPartitions: 1 }]);
    const crashes: string[] = [];
    const client = new KafkajsConsumerClient({
      brokers: kafkaBrokers,
      groupId: uniqueName('rejoin-crash-'),
      clientId: 'rejoin-crash',
      concurrency: 1,
      sessionTimeoutMs: 10_000,
      heartbeatIntervalMs: 1000,
      onCrash: (error) => crashes.push((error as Error).message),
    });
    stops.push(() => client.stop());
    const seen: string[] = [];
    let thrown = false;
    await client.start([{ topics: [topic], fromBeginning: true }], async (messages, control) => {
      for (const message of messages) {
        const value = message.value!.toString();
        seen.push(value);
        if (value === 'second' && !thrown) {
          thrown = true;
          // Right after 'first' was resolved: no periodic commit (every second) in between.
          throw new KafkaJSNonRetriableError('a crash right after a finished message');
        }
        control.resolveOffset(message.offset);
      }
    });
    const send = await producer();
    await send.send({ topic, acks: -1, messages: [{ value: 'first' }, { value: 'second' }] });

    await waitFor(() => seen.filter((v) => v === 'second').length === 2, {
      timeoutMs: 45_000,
      message: `the unfinished message again (seen: ${seen.join(', ')})`,
    });
    await sleep(1000);
    expect(crashes).toEqual(['a crash right after a finished message']);
    expect(seen).toEqual(['first', 'second', 'second']);
  });
});
