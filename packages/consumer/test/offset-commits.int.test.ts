import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TopicRouter } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { consumerFixture } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-offsets');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

// Offsets are committed in the background about once a second (OffsetCommitter), not after
// every batch. These tests read the group's committed offsets from the broker while the
// member keeps running: what a crash at that moment would redeliver.
describe('EventConsumer offset commits (real Kafka)', () => {
  it('commits the offsets of finished messages within about a second while the member stays idle', async () => {
    const prefix = f.prefix();
    const groupId = f.group('idle-commit');
    const topic = new TopicRouter({ prefix }).topicFor('doc.saved');
    const handled: string[] = [];
    await f.consumer({ groupId, routing: { prefix } }, [{ eventTypes: ['doc.saved'], handler: async (event) => void handled.push(event.id) }]);
    const ids = await f.publish(
      prefix,
      Array.from({ length: 9 }, (_, i) => ({ tenantId: `t-${i}`, eventType: 'doc.saved' })),
    );
    await waitFor(() => handled.length === ids.length, { timeoutMs: 15_000, message: 'all nine events handled' });
    const finishedAt = Date.now();
    // No stop, no further batch: only the background commit can move the group's offsets.
    let committed: number[] = [];
    await waitFor(
      async () => {
        committed = await f.committedOffsets(groupId, topic);
        return committed.reduce((sum, o) => sum + Math.max(0, o), 0) === ids.length;
      },
      { timeoutMs: 5000, intervalMs: 100, message: 'committed offsets covering all nine events' },
    );
    expect(Date.now() - finishedAt).toBeLessThan(3000);
  });

  it('commits progress during a batch whose handlers outlast the interval, before the batch ends', async () => {
    const prefix = f.prefix();
    const groupId = f.group('mid-batch');
    const topic = new TopicRouter({ prefix }).topicFor('doc.saved');
    const handled: string[] = [];
    // One tenant: one partition, one batch of 20 messages, 150 ms each (3 s in all).
    const ids = await f.publish(
      prefix,
      Array.from({ length: 20 }, () => ({ tenantId: 'one-tenant', eventType: 'doc.saved' })),
    );
    await f.consumer({ groupId, routing: { prefix } }, [
      {
        eventTypes: ['doc.saved'],
        handler: async (event) => {
          await new Promise((r) => setTimeout(r, 150));
          handled.push(event.id);
        },
      },
    ]);
    let midway: { committed: number; handled: number } | undefined;
    await waitFor(
      async () => {
        const committed = Math.max(...(await f.committedOffsets(groupId, topic)));
        if (committed > 0 && handled.length < ids.length) midway = { committed, handled: handled.length };
        return midway !== undefined || handled.length === ids.length;
      },
      { timeoutMs: 20_000, intervalMs: 100, message: 'a commit or the end of the batch' },
    );
    expect(midway, 'no offset was committed before the batch ended').toBeDefined();
    // Never ahead of what was finished.
    expect(midway!.committed).toBeLessThanOrEqual(midway!.handled);
  });
});
