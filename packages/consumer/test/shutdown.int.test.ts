import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { EventBusError } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { EventConsumer } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-stop');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

describe('EventConsumer.stop (real Kafka)', () => {
  it('is safe before start and idempotent', async () => {
    const consumer = new EventConsumer({ brokers: f.brokers, groupId: f.group('idle') });
    await consumer.stop();
    await consumer.stop();
    expect(() => consumer.subscribe({ eventTypes: ['a.b'], handler: async () => {} })).toThrow(/before start/);
  });

  it('lets the handler in flight finish and commits its offset, so the next member does not redeliver it', async () => {
    const prefix = f.prefix();
    const groupId = f.group('finisher');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handled: string[] = [];
    let finished = false;
    const consumer = await f.consumer({ groupId, routing: { prefix } }, [
      {
        eventTypes: ['doc.saved'],
        handler: async (event) => {
          handled.push(event.id);
          if (handled.length === 1) await gate;
          finished = true;
        },
      },
    ]);
    const [first] = await f.publish(prefix, [{ tenantId: 't', eventType: 'doc.saved' }]);
    await waitFor(() => handled.length === 1, { timeoutMs: 15_000, message: 'the first delivery' });
    // The handler is held well past the time a stop that does not wait would take.
    setTimeout(release, 400);
    const stops = await Promise.all([consumer.stop().then(() => finished), consumer.stop().then(() => finished)]);
    expect(stops).toEqual([true, true]);

    const later: string[] = [];
    await f.consumer({ groupId, routing: { prefix } }, [{ eventTypes: ['doc.saved'], handler: async (event) => void later.push(event.id) }]);
    const [marker] = await f.publish(prefix, [{ tenantId: 't', eventType: 'doc.saved' }]);
    await waitFor(() => later.includes(marker!), { timeoutMs: 15_000, message: 'the marker event' });
    expect(later).not.toContain(first);
  });

  it('resolves within the grace period while a handler is stuck inside ctx.processOnce: its transaction is ended and rolled back, the event delivered again', async () => {
    const prefix = f.prefix();
    const groupId = f.group('stuck-inbox');
    let inside = false;
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = { debug() {}, info() {}, error() {}, warn: (fields: Record<string, unknown>, message: string) => void warnings.push({ fields, message }) };
    const consumer = await f.consumer({ groupId, routing: { prefix }, connectionString: f.database.url, shutdownGraceMs: 300, logger }, [
      {
        name: 'indexer',
        eventTypes: ['doc.*'],
        handler: async (_event, ctx) => {
          await ctx.processOnce(async (tx) => {
            inside = true;
            // A downstream call or lock wait that ignores ctx.signal.
            await tx.execute(sql`SELECT pg_sleep(8)`);
          });
        },
      },
    ]);
    const [id] = await f.publish(prefix, [{ tenantId: 't1', eventType: 'doc.saved' }]);
    await waitFor(() => inside, { timeoutMs: 20_000, message: 'the handler inside processOnce' });
    const startedAt = Date.now();
    await consumer.stop();
    // Grace 300 ms, commit and LeaveGroup, 500 ms for the transaction to end by itself: well under
    // 4 s. Before, pool.end() waited for the transaction (8 s).
    expect(Date.now() - startedAt).toBeLessThan(4000);
    const warning = warnings.find((w) => w.message.startsWith('stop(): ctx.processOnce transactions still open after the grace period'));
    expect(warning?.fields.transactions).toMatchObject([{ groupId, eventId: id, subscription: 'indexer', tenantId: 't1' }]);

    // The next member gets the event (its offset was not committed) and runs the effect: the stuck
    // transaction, inbox row included, was rolled back (once Postgres ended its pg_sleep).
    const ran: boolean[] = [];
    await f.consumer({ groupId, routing: { prefix }, connectionString: f.database.url, handlerTimeoutMs: 20_000 }, [
      { name: 'indexer', eventTypes: ['doc.*'], handler: async (_event, ctx) => void ran.push(await ctx.processOnce(async () => {})) },
    ]);
    await waitFor(() => ran.length > 0, { timeoutMs: 20_000, message: 'the event delivered again' });
    expect(ran).toEqual([true]);
  });

  it('aborts a handler that outlives the grace period and leaves its event for the next member', async () => {
    const prefix = f.prefix();
    const groupId = f.group('stubborn');
    let reason: unknown;
    let inFlight = false;
    const consumer = await f.consumer({ groupId, routing: { prefix }, shutdownGraceMs: 200 }, [
      {
        eventTypes: ['doc.saved'],
        handler: (_event, ctx) => {
          inFlight = true;
          return new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject((reason = ctx.signal.reason))));
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    const [id] = await f.publish(prefix, [{ tenantId: 't', eventType: 'doc.saved' }]);
    await waitFor(() => inFlight, { timeoutMs: 15_000, message: 'the handler in flight' });
    const before = Date.now();
    await consumer.stop();
    expect(Date.now() - before).toBeGreaterThanOrEqual(190);
    expect(reason).toBeInstanceOf(EventBusError);
    expect((reason as EventBusError).code).toBe('STOPPED');

    const seen: Array<{ id: string; attempt: number }> = [];
    await f.consumer({ groupId, routing: { prefix } }, [
      { eventTypes: ['doc.saved'], handler: async (event, ctx) => void seen.push({ id: event.id, attempt: ctx.attempt }) },
    ]);
    await waitFor(() => seen.length === 1, { timeoutMs: 15_000, message: 'the redelivery' });
    expect(seen).toEqual([{ id, attempt: 1 }]);
    // Interrupted by stop, not failed: no retry, no dead letter.
    expect(await f.messageCount(consumer.options.retryTopic)).toBe(0);
    expect(dlq.messages).toHaveLength(0);
  });
  it('stops at once while a retry waits for its due time, and the next member retries it when due', async () => {
    const prefix = f.prefix();
    const groupId = f.group('waiting');
    const retryConfig = { maxRetries: 1, initialDelayMs: 4000, maxDelayMs: 4000 };
    const attempts: Array<{ attempt: number; at: number }> = [];
    const handler = async (_event: unknown, ctx: { attempt: number }) => {
      attempts.push({ attempt: ctx.attempt, at: Date.now() });
      if (ctx.attempt === 1) throw new Error('downstream down');
    };
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig }, [{ eventTypes: ['doc.saved'], handler }]);
    await f.publish(prefix, [{ tenantId: 't', eventType: 'doc.saved' }]);
    await waitFor(() => attempts.length === 1, { timeoutMs: 15_000, message: 'the first attempt' });
    const failedAt = attempts[0]!.at;
    // The retry copy is read back within a fetch round or two and its batch waits for the due time.
    await new Promise((r) => setTimeout(r, 1500));
    const stopStarted = Date.now();
    await consumer.stop();
    // Not the 2.5 s left until the retry is due: the wait ends on the batch's signal.
    expect(Date.now() - stopStarted).toBeLessThan(2000);
    expect(attempts).toHaveLength(1);

    await f.consumer({ groupId, routing: { prefix }, retryConfig }, [{ eventTypes: ['doc.saved'], handler }]);
    await waitFor(() => attempts.length === 2, { timeoutMs: 20_000, message: 'the retry, by the next member' });
    expect(attempts[1]!.attempt).toBe(2);
    expect(attempts[1]!.at - failedAt).toBeGreaterThanOrEqual(4000 - 15);
  });
  it('lets a new member join at once while a retry waits for its due time (the waiting batch ends for the rebalance)', async () => {
    const prefix = f.prefix();
    const groupId = f.group('rebalanced');
    const retryConfig = { maxRetries: 1, initialDelayMs: 30_000, maxDelayMs: 30_000 };
    const handled = new Map<string, number>();
    let failedOnce = false;
    const handler = async (event: { id: string; tenantId: string }) => {
      if (event.tenantId === 'failing' && !failedOnce) {
        failedOnce = true;
        throw new Error('downstream down');
      }
      handled.set(event.id, Date.now());
    };
    await f.consumer({ groupId, routing: { prefix }, retryConfig }, [{ eventTypes: ['doc.saved'], handler }]);
    await f.publish(prefix, [{ tenantId: 'failing', eventType: 'doc.saved' }]);
    await waitFor(() => failedOnce, { timeoutMs: 15_000, message: 'the failure' });
    await new Promise((r) => setTimeout(r, 1500)); // the retry copy read back; its batch waits 30 s
    const joinedAt = Date.now();
    await f.consumer({ groupId, routing: { prefix }, retryConfig }, [{ eventTypes: ['doc.saved'], handler }]);
    const ids = await f.publish(
      prefix,
      Array.from({ length: 12 }, (_, i) => ({ tenantId: `t-${i}`, eventType: 'doc.saved' })),
    );
    await waitFor(() => ids.every((id) => handled.has(id)), { timeoutMs: 20_000, message: 'every event after the join' });
    // Held up by a batch waiting out the retry's 30 s, the rebalance (and every partition) would wait with it.
    expect(Math.max(...ids.map((id) => handled.get(id)!)) - joinedAt).toBeLessThan(10_000);
  });
});
