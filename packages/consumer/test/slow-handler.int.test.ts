import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { consumerFixture } from './consumer-fixture.js';

// kafkajs fetches a broker's partitions in rounds and starts the next round only when every
// batch of the last one returned. A tenant whose handler takes seconds per event (a downstream
// timing out) must not make every other tenant on the broker wait for its whole batch: a batch
// still going after 100 ms goes on by itself, its partition paused until it ends. And before
// the member rejoins its group, kafkajs waits for such batches (patch revision 6,
// settleBatches), so no other member is given a partition one of them still handles.

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-slow');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const SLOW_MS = 1500;
/** The rebalance case's handler time: long enough that a second member joins while the first member's batches still run. */
const REBALANCE_SLOW_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a tenant whose handler is slow (real Kafka)', () => {
  it('does not hold up the other partitions while its batch is handled, and its own events are handled in order and committed', async () => {
    const prefix = f.prefix();
    const groupId = f.group('slow');
    const slowHandled: string[] = [];
    const partitionOf = new Map<string, number>();
    const healthyLatency = new Map<string, number>();
    const publishedAt = new Map<string, number>();
    const slowDoneBefore = new Map<string, number>(); // slow events finished when a healthy one was handled
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 0 } }, [
      {
        eventTypes: ['order.*'],
        handler: async (event, ctx) => {
          partitionOf.set(event.tenantId, ctx.partition);
          if (event.tenantId === 'slow') {
            await sleep(SLOW_MS);
            slowHandled.push(event.id);
            return;
          }
          healthyLatency.set(event.id, Date.now() - publishedAt.get(event.id)!);
          slowDoneBefore.set(event.id, slowHandled.length);
        },
      },
    ]);
    // Warm-up: the group is joined and every partition fetched once before the measured part.
    const tenants = ['t-a', 't-b', 't-c', 't-d', 't-e', 't-f'];
    const publish = async (tenantIds: string[]) => {
      const events = tenantIds.map((tenantId) => ({ tenantId, eventType: 'order.placed', id: uuidv7() }));
      for (const e of events) publishedAt.set(e.id, Date.now()); // before: the handler may run before publish() returns
      return f.publish(prefix, events);
    };
    const warm = await publish(tenants);
    await waitFor(() => warm.every((id) => healthyLatency.has(id)), { timeoutMs: 30_000, message: 'warm-up events handled' });

    // Five slow events in one batch (7.5 s of handling), then healthy events every 250 ms meanwhile.
    const slowIds = await f.publish(
      prefix,
      Array.from({ length: 5 }, () => ({ tenantId: 'slow', eventType: 'order.placed' })),
    );
    await waitFor(() => partitionOf.has('slow'), { timeoutMs: 10_000, message: 'the slow batch started' });
    const measured: string[] = [];
    for (let round = 0; round < 16; round++) {
      const tenantId = tenants[round % tenants.length]!;
      measured.push(...(await publish([tenantId])));
      await sleep(250);
    }
    await waitFor(() => measured.every((id) => healthyLatency.has(id)), { timeoutMs: 30_000, message: 'healthy events handled' });
    const elsewhere = measured.filter((_id, i) => partitionOf.get(tenants[i % tenants.length]!) !== partitionOf.get('slow'));
    expect(elsewhere.length, 'healthy tenants on other partitions than the slow one').toBeGreaterThan(4);
    const worst = Math.max(...elsewhere.map((id) => healthyLatency.get(id)!));
    // Held up by the slow batch they would wait for its 7.5 s; detached, one fetch round and the handler.
    expect(worst, 'the slowest healthy event on another partition, publish → handler (ms)').toBeLessThan(SLOW_MS);
    // (Healthy tenants on the slow tenant's partition wait behind its batch: that is their order.)
    const slowDone = Math.max(...elsewhere.map((id) => slowDoneBefore.get(id)!));
    expect(slowDone, 'the slow batch was still going while the healthy events on other partitions were handled').toBeLessThan(5);

    await waitFor(() => slowHandled.length === 5, { timeoutMs: 20_000, message: 'the slow events handled' });
    expect(slowHandled).toEqual(slowIds);
    await consumer.stop();
    // Everything handled is committed: nothing of the slow partition is delivered again.
    const committed = await f.committedOffsets(groupId, `${prefix}order`);
    const ends = await f.topicEnds(`${prefix}order`);
    expect(committed).toEqual(ends.map((end) => (end === 0 ? -1 : end))); // -1: an empty partition, nothing to commit
  }, 90_000);

  it('stop() waits for the slow handler in flight and commits what it finished; the rest is delivered again', async () => {
    const prefix = f.prefix();
    const groupId = f.group('slow-stop');
    const started: string[] = [];
    const finished: string[] = [];
    const subscription = {
      eventTypes: ['order.*'],
      handler: async (event: { id: string }) => {
        started.push(event.id);
        await sleep(SLOW_MS);
        finished.push(event.id);
      },
    };
    const consumer = await f.consumer({ groupId, routing: { prefix } }, [subscription]);
    const ids = await f.publish(
      prefix,
      Array.from({ length: 4 }, () => ({ tenantId: 'slow', eventType: 'order.placed' })),
    );
    await waitFor(() => started.length === 1, { timeoutMs: 20_000, message: 'the first slow handler started' });
    await sleep(500); // well past the 100 ms after which the batch went on by itself
    await consumer.stop();
    // stop() returned after the handler in flight finished, and no later one started.
    expect(finished).toEqual([ids[0]]);
    expect(started).toEqual([ids[0]]);

    const again: string[] = [];
    await f.consumer({ groupId, routing: { prefix } }, [{ eventTypes: ['order.*'], handler: async (event) => void again.push(event.id) }]);
    await waitFor(() => again.length >= 3, { timeoutMs: 30_000, message: 'the unfinished events delivered again' });
    await sleep(1000);
    expect(again).toEqual(ids.slice(1));
  }, 90_000);

  it('never has two handler calls of one partition running at once, across members: a member joining waits for the batches that went on by themselves', async () => {
    const prefix = f.prefix();
    const groupId = f.group('slow-rb');
    const running = new Map<number, number>(); // partition -> handler calls running
    const overlaps: string[] = [];
    const started: string[] = [];
    const handler = (member: string) => async (event: { id: string }, ctx: { partition: number }) => {
      const now = (running.get(ctx.partition) ?? 0) + 1;
      running.set(ctx.partition, now);
      started.push(`${member}:${ctx.partition}:${event.id}`);
      if (now > 1) overlaps.push(`${member} started ${event.id} on partition ${ctx.partition} while ${now - 1} other call(s) ran`);
      await sleep(REBALANCE_SLOW_MS);
      running.set(ctx.partition, running.get(ctx.partition)! - 1);
    };
    const options = { groupId, routing: { prefix }, heartbeatIntervalMs: 300, sessionTimeoutMs: 6000 };
    await f.consumer(options, [{ eventTypes: ['order.*'], handler: handler('A') }]);
    const tenants = Array.from({ length: 9 }, (_, i) => `slow-${i}`);
    await f.publish(
      prefix,
      tenants.flatMap((tenantId) => [0, 1].map(() => ({ tenantId, eventType: 'order.placed' }))),
    );
    await waitFor(() => started.length >= 2, { timeoutMs: 20_000, message: 'slow batches started' });
    await sleep(300); // the batches went on by themselves (detached)
    await f.consumer(options, [{ eventTypes: ['order.*'], handler: handler('B') }]);
    await waitFor(() => started.some((s) => s.startsWith('B:')), { timeoutMs: 30_000, message: 'B handled something' });
    await sleep(3 * REBALANCE_SLOW_MS);
    expect(overlaps, started.join('\n')).toEqual([]);
  }, 90_000);
});
