import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { encodeEvent, TopicRouter, uuidv7 } from '@eventbus/core';
import { KafkaCluster, uniqueName, waitFor } from '@eventbus/dev-services';
import { EventConsumer } from '../src/index.js';

// A partition leader change seen by consumers: node 1 leads every partition of the topic, and
// the partition member a fetches is reassigned off node 1 (replicas [2, 3]: a broker being
// decommissioned) while a's handlers of its other partitions still run and a third member is
// joining. a's next fetch to node 1 gets NOT_LEADER_OR_FOLLOWER and kafkajs makes it rejoin from
// inside the fetch. That rejoin must wait for the handlers that went on by themselves, as a
// rebalance does: their partitions go to no other member while they run, and every event is
// handled and committed.
// (A leader move that leaves node 1 a follower, by a preferred-leader election or a controlled
// shutdown and restart, does not reach that path: a follower serves kafkajs' Fetch v11 (KIP-392),
// and a stopped node's fetches fail with connection errors, which refresh metadata only.)
describe('EventConsumer members across a partition leader change (3-node cluster)', () => {
  const cluster = new KafkaCluster({ log: (line) => console.error(line) });
  let admin: Admin;
  let producer: Producer;
  const consumers: EventConsumer[] = [];

  beforeAll(async () => {
    await cluster.start();
    const kafka = new Kafka({ brokers: cluster.brokers, logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 300 } });
    admin = kafka.admin();
    await admin.connect();
    producer = kafka.producer();
    await producer.connect();
  }, 240_000);

  afterAll(async () => {
    await Promise.all(consumers.map((c) => c.stop().catch(() => undefined)));
    await producer?.disconnect();
    await admin?.disconnect();
    // Stops the cluster if this file started it.
    await cluster.stop();
  }, 240_000);

  /** How long a marked event's handler runs: longer than the reassignment and the rejoin it causes. */
  const SLOW_MS = 8000;
  const PARTITIONS = 6;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('hands an event whose handler still runs to no other member, and handles and commits every event', async () => {
    const prefix = `${uniqueName('leader-move-consumer.')}.`;
    const topic = `${prefix}order`;
    const router = new TopicRouter({ prefix });
    expect(router.topicFor('order.placed')).toBe(topic);
    // Every partition led by node 1 and replicated on all three.
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, replicaAssignment: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, replicas: [1, 2, 3] })) }],
    });
    await cluster.waitForFullIsr([topic], 60_000);
    for (let p = 0; p < PARTITIONS; p++) expect(await cluster.leaderOf(topic, p)).toBe(1);

    const publish = async (partition: number, tenantId: string): Promise<string> => {
      const id = uuidv7();
      const wire = encodeEvent({
        id,
        tenantId,
        projectId: null,
        eventKey: `key-${id}`,
        eventType: 'order.placed',
        version: 1,
        payloadJson: '{}',
        correlationId: id,
        causationId: null,
        createdAt: new Date(),
        traceparent: null,
        tracestate: null,
      });
      await producer.send({ topic, acks: -1, messages: [{ ...wire, partition }] });
      return id;
    };

    const calls: Array<{ member: string; id: string; partition: number; start: number; end?: number }> = [];
    const handler = (member: string) => async (event: { id: string; tenantId: string }, ctx: { partition: number }) => {
      const call: (typeof calls)[number] = { member, id: event.id, partition: ctx.partition, start: Date.now() };
      calls.push(call);
      if (event.tenantId === 'slow') await sleep(SLOW_MS);
      call.end = Date.now();
    };
    const groupId = uniqueName('leader-move-');
    const member = async (name: string, heartbeatIntervalMs = 500) => {
      const consumer = new EventConsumer({
        brokers: cluster.brokers,
        groupId,
        clientId: `leader-move-${name}`,
        routing: { prefix },
        fromBeginning: true,
        topicPartitions: PARTITIONS,
        retryConfig: { maxRetries: 0 },
        sessionTimeoutMs: 30_000,
        heartbeatIntervalMs,
        onMetric: () => {},
      });
      consumer.subscribe({ eventTypes: ['order.*'], handler: handler(name) });
      consumers.push(consumer);
      return consumer;
    };
    // a's heartbeat every 20 s: it learns of c's join from its stale fetch, not from a heartbeat.
    await (await member('a', 20_000)).start();
    await (await member('b')).start();

    // Who owns which partition: one event on each, handled once the assignment settled.
    const owners = new Map<number, string>();
    await waitFor(
      async () => {
        const ids = await Promise.all(Array.from({ length: PARTITIONS }, (_, p) => publish(p, 'owner')));
        await sleep(1500);
        for (const id of ids) {
          const call = calls.find((c) => c.id === id);
          if (call) owners.set(call.partition, call.member);
        }
        return owners.size === PARTITIONS && new Set(owners.values()).size === 2;
      },
      { timeoutMs: 40_000, intervalMs: 100, message: 'both members own partitions' },
    );
    // a keeps fetching its first partition (from node 1, which leads all) and handles its others slowly.
    const [fetched, ...slowPartitions] = [...owners]
      .filter(([, m]) => m === 'a')
      .map(([p]) => p)
      .sort((x, y) => x - y);
    expect(fetched).toBeDefined();
    expect(slowPartitions.length).toBeGreaterThan(0);
    const published: string[] = calls.map((c) => c.id);

    // A slow event on each of a's other partitions: one of them goes to another member in the new assignment.
    const slowIds = await Promise.all(slowPartitions.map((p) => publish(p, 'slow')));
    published.push(...slowIds);
    await waitFor(() => slowIds.every((id) => calls.some((c) => c.id === id)), { timeoutMs: 20_000, message: 'the slow events handled' });
    await sleep(300); // past the 100 ms after which their batches go on by themselves

    // Member c joins (its start returns once the group rebalanced, which needs a), and a's
    // fetched partition leaves node 1 while the slow handlers run.
    const c = await member('c');
    const cStarted = c.start();
    await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: fetched!, replicas: [2, 3] }] }] });
    await waitFor(
      async () => (await admin.listPartitionReassignments({ topics: [{ topic, partitions: [fetched!] }] })).topics.every((t) => t.partitions.length === 0),
      { timeoutMs: 20_000, message: 'reassignment done' },
    );
    expect(await cluster.leaderOf(topic, fetched!)).not.toBe(1);
    // Events on every partition, handled by whichever member owns it after the rejoin.
    for (let round = 0; round < 3; round++) for (let p = 0; p < PARTITIONS; p++) published.push(await publish(p, `t-${p}`));

    await cStarted;
    await waitFor(() => published.every((id) => calls.some((call) => call.id === id && call.end !== undefined)), {
      timeoutMs: 40_000,
      message: 'every event handled',
    });
    // The new assignment in place: one of a's slow partitions is now another member's.
    await waitFor(
      async () => {
        const ids = await Promise.all(slowPartitions.map((p) => publish(p, 'probe')));
        published.push(...ids);
        await sleep(1000);
        return ids.some((id) => calls.some((call) => call.id === id && call.member !== 'a'));
      },
      { timeoutMs: 30_000, intervalMs: 100, message: "one of a's slow partitions moved to another member" },
    );
    await waitFor(() => published.every((id) => calls.some((call) => call.id === id && call.end !== undefined)), {
      timeoutMs: 20_000,
      message: 'the probes handled',
    });

    const t0 = calls[0]!.start;
    const timeline = calls.map((call) => `${call.member} p${call.partition} ${call.id.slice(-4)} ${call.start - t0}-${(call.end ?? 0) - t0} ms`).join('\n');
    // No event handled by two members at overlapping times.
    const overlaps = calls.flatMap((x, i) =>
      calls
        .slice(i + 1)
        .filter((y) => y.id === x.id && y.member !== x.member && y.start < (x.end ?? Infinity) && x.start < (y.end ?? Infinity))
        .map((y) => `${x.id} on partition ${x.partition}: ${x.member} ${x.start}-${x.end}, ${y.member} ${y.start}-${y.end}`),
    );
    expect(overlaps, timeline).toEqual([]);
    // Finished and committed by a before their partitions moved: no other member got them.
    expect(calls.filter((call) => slowIds.includes(call.id)).map((call) => call.member)).toEqual(slowIds.map(() => 'a'));

    await Promise.all(consumers.splice(0).map((c) => c.stop()));
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const offsets = await admin.fetchTopicOffsets(topic);
    expect((committed?.partitions ?? []).sort((x, y) => x.partition - y.partition).map((p) => Number(p.offset))).toEqual(
      offsets.sort((x, y) => x.partition - y.partition).map((p) => Number(p.high)),
    );
  });
});
