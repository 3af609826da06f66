import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@eventbus/dev-services';
import { consumerFixture } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-slow-rb');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const SLOW_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a slow batch while a second member joins (real Kafka)', () => {
  it('never has two handler calls of one partition running at once, across members', async () => {
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
      await sleep(SLOW_MS);
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
    await sleep(3 * SLOW_MS);
    expect(overlaps, started.join('\n')).toEqual([]);
  }, 90_000);
});
