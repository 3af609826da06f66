// Type tests, compiled by `pnpm typecheck` (tsconfig.typetest.json): an unused @ts-expect-error
// fails the build, so each marked line proves that a wrong payload does not compile.
import { expectTypeOf } from 'vitest';
import { z } from 'zod';
import { type ConsumedEvent, defineEvent, type EventConsumer } from './index.js';

declare const consumer: EventConsumer;
const orderPlaced = defineEvent({
  type: 'order.placed',
  version: 2,
  schema: z.object({ orderId: z.string(), total: z.number() }),
  upcast: { 1: (v1: { orderId: string; amount: number }) => ({ orderId: v1.orderId, total: v1.amount }) },
});

consumer.subscribe(orderPlaced, async (event) => {
  expectTypeOf(event.payload).toEqualTypeOf<{ orderId: string; total: number }>();
  const total: number = event.payload.total;
  void total;
  // @ts-expect-error the current version has no amount (v1's field)
  void event.payload.amount;
  // @ts-expect-error total is a number, not a string
  const wrong: string = event.payload.total;
  void wrong;
});

// @ts-expect-error a handler written for another payload does not fit the contract
consumer.subscribe(orderPlaced, async (event: ConsumedEvent<{ sku: string }>) => void event);

// Wildcard subscriptions stay untyped.
consumer.subscribe({
  eventTypes: ['order.#'],
  handler: async (event) => {
    expectTypeOf(event.payload).toEqualTypeOf<unknown>();
  },
});
