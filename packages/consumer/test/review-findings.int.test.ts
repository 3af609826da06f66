import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@eventbus/dev-services';
import { consumerFixture } from './consumer-fixture.js';

// Findings of a review of the consumer: each test fails on the code it was written against.

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-review');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

describe('consumer review findings (real Kafka, real Postgres)', () => {
  it('ctx.processOnce runs the effect of every subscription that matches the event, not only the first', async () => {
    const prefix = f.prefix();
    const groupId = f.group('two-subs');
    const ran: Array<{ subscription: string; ran: boolean }> = [];
    const handler = (subscription: string) => async (_event: unknown, ctx: { processOnce: (e: () => Promise<void>) => Promise<boolean> }) => {
      ran.push({ subscription, ran: await ctx.processOnce(async () => {}) });
    };
    await f.consumer({ groupId, routing: { prefix }, connectionString: f.database.url }, [
      { name: 'index', eventTypes: ['invoice.*'], handler: handler('index') },
      { name: 'bill', eventTypes: ['invoice.*'], handler: handler('bill') },
    ]);
    await f.publish(prefix, [{ tenantId: 't1', eventType: 'invoice.issued' }]);
    await waitFor(() => ran.length >= 2, { timeoutMs: 20_000, message: 'both subscriptions called' });
    // Each subscription's effect is its own ("each subscription fails, retries and dead-letters
    // on its own"); the inbox key (group, event id) lets only the first one's effect run.
    expect(ran.sort((a, b) => a.subscription.localeCompare(b.subscription))).toEqual([
      { subscription: 'bill', ran: true },
      { subscription: 'index', ran: true },
    ]);
  });
});
