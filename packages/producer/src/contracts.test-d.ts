// Type tests, compiled by `pnpm typecheck` (tsconfig.typetest.json): an unused @ts-expect-error
// fails the build, so each marked line proves that a wrong payload does not compile.
import { expectTypeOf } from 'vitest';
import { z } from 'zod';
import { type ContractInput, contractEvent, defineEvent, type EventWriter } from './index.js';

declare const writer: EventWriter;
const orderPlaced = defineEvent({ type: 'order.placed', version: 2, schema: z.object({ orderId: z.string(), total: z.number() }) });
const base = { tenantId: 't1', eventKey: 'k1' };

expectTypeOf<ContractInput<typeof orderPlaced>>().toEqualTypeOf<{ orderId: string; total: number }>();
expectTypeOf(orderPlaced.type).toEqualTypeOf<'order.placed'>();

// The contract's payload compiles.
void writer.writeEventWithOutbox(orderPlaced, { ...base, payload: { orderId: 'o1', total: 1 } });
void writer.writeEvent(orderPlaced, { ...base, payload: { orderId: 'o1', total: 1 } });
// @ts-expect-error total is a number
void writer.writeEventWithOutbox(orderPlaced, { ...base, payload: { orderId: 'o1', total: '1' } });
// @ts-expect-error orderId is required
void writer.writeEventWithOutbox(orderPlaced, { ...base, payload: { total: 1 } });
// @ts-expect-error a payload of another shape
void writer.writeEvent(orderPlaced, { ...base, payload: { sku: 'x' } });
// @ts-expect-error the contract gives the event type
void writer.writeEventWithOutbox(orderPlaced, { ...base, eventType: 'order.placed', payload: { orderId: 'o1', total: 1 } });
// @ts-expect-error the contract gives the version
void writer.writeEventWithOutbox(orderPlaced, { ...base, version: 1, payload: { orderId: 'o1', total: 1 } });

// A batch: contractEvent types each contract event; untyped inputs still take any payload.
void writer.writeEventsWithOutbox([
  contractEvent(orderPlaced, { ...base, payload: { orderId: 'o1', total: 1 } }),
  { ...base, eventType: 'order.placed', payload: { anything: true } },
]);
// @ts-expect-error total is a number
contractEvent(orderPlaced, { ...base, payload: { orderId: 'o1', total: null } });

// The untyped API is unchanged.
void writer.writeEventWithOutbox({ ...base, eventType: 'order.placed', payload: { anything: true } });
