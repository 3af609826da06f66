import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { waitFor } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay } from '@eventbus/relay';
import { type ConsumedEvent, defineEvent, DLQ_HEADER, EventConsumer } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';

/**
 * Contracts end to end: the producer writes through EventWriter (typed and untyped), the relay
 * publishes to the real broker, a contract subscription upcasts and validates before its
 * handler, and the DLQ mirror shows what was dead-lettered, with the schema's issues.
 */

const orderPlaced = defineEvent({
  type: 'order.placed',
  version: 2,
  schema: z.object({ orderId: z.string(), total: z.object({ amount: z.number(), currency: z.string().length(3) }) }),
  upcast: { 1: (v1: { orderId: string; amount: number }) => ({ orderId: v1.orderId, total: { amount: v1.amount, currency: 'EUR' } }) },
});
type OrderPlaced = z.infer<typeof orderPlaced.schema>;

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-contracts');
});
afterAll(async () => f?.close());

describe('contract subscriptions (real Postgres, relay and Kafka)', () => {
  it('hands the typed current version to the handler, upcasts an old one, and dead-letters an invalid or newer payload at once with the issues', async () => {
    const prefix = f.prefix();
    const groupId = f.group('billing');
    const writer = new EventWriter(f.db);
    await writer.writeEventWithOutbox(orderPlaced, { tenantId: 't1', eventKey: 'typed', payload: { orderId: 'o-1', total: { amount: 10, currency: 'USD' } } });
    // The untyped API writes what an older or a careless producer would.
    await writer.writeEventWithOutbox({ tenantId: 't1', eventKey: 'v1', eventType: 'order.placed', version: 1, payload: { orderId: 'o-2', amount: 7 } });
    const invalid = await writer.writeEventWithOutbox({
      tenantId: 't2',
      eventKey: 'invalid',
      eventType: 'order.placed',
      version: 2,
      payload: { orderId: 'o-3', total: { amount: 'ten', currency: 'EURO' } },
    });
    const newer = await writer.writeEventWithOutbox({ tenantId: 't3', eventKey: 'v3', eventType: 'order.placed', version: 3, payload: { orderId: 'o-4' } });

    const typed: Array<{ version: number; payload: OrderPlaced }> = [];
    const untyped: Array<ConsumedEvent<unknown>> = [];
    const consumer = new EventConsumer({ brokers: f.brokers, groupId, routing: { prefix }, fromBeginning: true, topicPartitions: 3, onMetric: () => {} });
    consumer.subscribe(
      orderPlaced,
      async (event) => {
        typed.push({ version: event.version, payload: event.payload });
      },
      { name: 'billing' },
    );
    // A wildcard subscription stays untyped: it sees every payload as written.
    consumer.subscribe({ eventTypes: ['order.#'], name: 'audit', handler: async (event) => void untyped.push(event) });
    const relay = new OutboxRelay({ connectionString: f.database.url, brokers: f.brokers, routing: { prefix }, pollIntervalMs: 200, rebalanceIntervalMs: 300 });
    await f.mirror({ routing: { prefix }, groups: [groupId] });
    await consumer.start();
    await relay.start();
    try {
      const deadLetters = await waitFor(
        async () => {
          const { rows } = await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE group_id = $1 ORDER BY event_id', [groupId]);
          return rows.length === 2 ? rows : undefined;
        },
        { timeoutMs: 30_000, message: 'two dead letters' },
      );
      await waitFor(() => typed.length === 2 && untyped.length === 4, { timeoutMs: 15_000, message: 'the handlers' });

      expect(typed.sort((a, b) => a.payload.orderId.localeCompare(b.payload.orderId))).toEqual([
        { version: 2, payload: { orderId: 'o-1', total: { amount: 10, currency: 'USD' } } },
        { version: 2, payload: { orderId: 'o-2', total: { amount: 7, currency: 'EUR' } } },
      ]);
      expect(untyped.map((e) => e.version).sort()).toEqual([1, 2, 2, 3]);

      const [invalidRow, newerRow] = deadLetters;
      expect(invalidRow).toMatchObject({ event_id: invalid.eventLogId, attempts: 1, error_class: 'NonRetriableError' });
      expect(invalidRow.headers[DLQ_HEADER.subscription]).toBe('billing');
      expect(invalidRow.error_message).toMatch(/^payload of order\.placed v2 does not match its schema: total\.amount: .+; total\.currency: /);
      expect(newerRow).toMatchObject({ event_id: newer.eventLogId, attempts: 1, error_class: 'NonRetriableError' });
      expect(newerRow.error_message).toContain("order.placed v3 is newer than this consumer's contract (v2)");
      // Dead-lettered at once: nothing went through the retry topic.
      expect(await f.messageCount(consumer.options.retryTopic)).toBe(0);
    } finally {
      await relay.stop();
      await consumer.stop();
    }
  });
});
