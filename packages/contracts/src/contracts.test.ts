import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isEventBusError, NonRetriableError } from '@eventbus/core';
import { asyncApiDocument, decodeContractPayload, defineCatalog, defineEvent, PayloadValidationError, upcastPayload, validatePayload } from './index.js';

const orderPlacedV1 = defineEvent({ type: 'order.placed', schema: z.object({ orderId: z.string(), amount: z.number() }) });
const orderPlaced = defineEvent({
  type: 'order.placed',
  version: 3,
  schema: z.object({ orderId: z.string(), total: z.object({ amount: z.number(), currency: z.string() }), lines: z.number().int() }),
  upcast: {
    1: (v1: { orderId: string; amount: number }) => ({ orderId: v1.orderId, total: v1.amount }),
    2: (v2: { orderId: string; total: number }) => ({ orderId: v2.orderId, total: { amount: v2.total, currency: 'EUR' }, lines: 0 }),
  },
  description: 'A customer placed an order',
});

describe('defineEvent', () => {
  it('keeps the type, version and schema, default version 1', () => {
    expect(orderPlacedV1.version).toBe(1);
    expect(orderPlaced).toMatchObject({ type: 'order.placed', version: 3, description: 'A customer placed an order' });
  });

  it('refuses a bad type, version, schema or upcast key, naming the field', () => {
    const schema = z.object({});
    expect(() => defineEvent({ type: 'Order Placed', schema })).toThrow(/type "Order Placed"/);
    expect(() => defineEvent({ type: 'order.placed', version: 0, schema })).toThrow(/version: expected an integer from 1/);
    expect(() => defineEvent({ type: 'order.placed', schema: { parse: () => 1 } as never })).toThrow(/Standard Schema validator/);
    expect(() => defineEvent({ type: 'order.placed', version: 2, schema, upcast: { 2: (v) => v } })).toThrow(/older versions \(1 to 1\)/);
  });
});

describe('validatePayload', () => {
  it("returns the schema's output", async () => {
    await expect(validatePayload(orderPlacedV1, { orderId: 'o1', amount: 5, extra: true })).resolves.toEqual({ orderId: 'o1', amount: 5 });
  });

  it('throws INVALID_PAYLOAD with the issues and their paths', async () => {
    const error = await validatePayload(orderPlaced, { orderId: 1, total: { amount: 'x', currency: 'EUR' }, lines: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadValidationError);
    expect(isEventBusError(error, 'INVALID_PAYLOAD')).toBe(true);
    const e = error as PayloadValidationError;
    expect(e.issues.map((i) => i.path?.map((p) => (typeof p === 'object' ? p.key : p)))).toEqual([['orderId'], ['total', 'amount']]);
    expect(e.message).toMatch(/^payload of order\.placed v3 does not match its schema: orderId: .+; total\.amount: /);
    expect(e.details).toMatchObject({ eventType: 'order.placed', version: 3, issues: [{ path: ['orderId'] }, { path: ['total', 'amount'] }] });
  });

  it('awaits an async schema', async () => {
    const contract = defineEvent({ type: 'user.created', schema: z.object({ id: z.string().refine(async (s) => s.startsWith('u')) }) });
    await expect(validatePayload(contract, { id: 'u1' })).resolves.toEqual({ id: 'u1' });
    await expect(validatePayload(contract, { id: 'x' })).rejects.toBeInstanceOf(PayloadValidationError);
  });
});

describe('upcastPayload and decodeContractPayload', () => {
  it('upcasts step by step from any older version', async () => {
    const expected = { orderId: 'o1', total: { amount: 5, currency: 'EUR' }, lines: 0 };
    expect(upcastPayload(orderPlaced, { orderId: 'o1', amount: 5 }, 1)).toEqual(expected);
    expect(upcastPayload(orderPlaced, { orderId: 'o1', total: 5 }, 2)).toEqual(expected);
    await expect(decodeContractPayload(orderPlaced, { orderId: 'o1', amount: 5 }, 1)).resolves.toEqual(expected);
  });

  it('a newer version than the contract, a missing step or an invalid payload is non-retriable', async () => {
    await expect(decodeContractPayload(orderPlaced, {}, 4)).rejects.toThrow(/order\.placed v4 is newer than this consumer's contract \(v3\)/);
    const gap = defineEvent({ type: 'order.placed', version: 3, schema: z.object({}), upcast: { 2: (v) => v } });
    await expect(decodeContractPayload(gap, {}, 1)).rejects.toThrow(/no upcast from v1/);
    const throwing = defineEvent({
      type: 'order.placed',
      version: 2,
      schema: z.object({}),
      upcast: {
        1: () => {
          throw new TypeError('no amount');
        },
      },
    });
    const thrown = await decodeContractPayload(throwing, {}, 1).catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(NonRetriableError);
    expect((thrown as Error).message).toBe('order.placed v1: the upcast from v1 threw: no amount');
    const error = await decodeContractPayload(orderPlaced, { orderId: 'o1', amount: 'five' }, 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonRetriableError);
    expect((error as Error).message).toMatch(/total\.amount: .+\(upcast from v1\)$/);
    expect((error as Error).cause).toBeInstanceOf(PayloadValidationError);
  });
});

describe('defineCatalog', () => {
  it('sorts contracts by type and version and refuses a (type, version) twice', () => {
    const userCreated = defineEvent({ type: 'user.created', schema: z.object({ id: z.string() }) });
    const catalog = defineCatalog({ contracts: [userCreated, orderPlaced, orderPlacedV1] });
    expect(catalog.contracts.map((c) => `${c.type}@${c.version}`)).toEqual(['order.placed@1', 'order.placed@3', 'user.created@1']);
    expect(() => defineCatalog({ contracts: [orderPlaced, orderPlaced] })).toThrow(/each \(type, version\) once/);
    expect(() => defineCatalog({ contracts: [{ type: 'x.y' } as never] })).toThrow(/defineEvent\(\) result/);
  });
});

describe('asyncApiDocument', () => {
  const userCreated = defineEvent({
    type: 'user.created',
    schema: { '~standard': { version: 1, vendor: 'hand-written', validate: (value: unknown) => ({ value }) } },
    jsonSchema: { type: 'object', properties: { id: { type: 'string' } } },
  });
  const catalog = defineCatalog({ title: 'shop', version: '2.1.0', contracts: [orderPlacedV1, orderPlaced, userCreated] });

  it('has a channel per topic, a message per contract version with its JSON Schema, headers and key', () => {
    const doc = asyncApiDocument(catalog, { routing: { routes: { 'user.*': 'accounts' } } }) as Record<string, any>;
    expect(Object.keys(doc.channels)).toEqual(['eventbus.order', 'accounts']);
    expect(doc.channels['eventbus.order'].address).toBe('eventbus.order');
    expect(Object.keys(doc.channels['eventbus.order'].messages)).toEqual(['order.placed.v1', 'order.placed.v3']);
    const v3 = doc.components.messages['order.placed.v3'];
    expect(v3.payload.schema.properties.total.properties.currency).toEqual({ type: 'string' });
    expect(v3.headers.properties.ce_eventversion.const).toBe('3');
    expect(v3.bindings.kafka.key.type).toBe('string');
    expect(doc.components.messages['user.created.v1'].payload.schema).toEqual({ type: 'object', properties: { id: { type: 'string' } } });
  });

  it('validates with @asyncapi/parser', async () => {
    const { Parser } = await import('@asyncapi/parser');
    const { diagnostics, document } = await new Parser().parse(JSON.stringify(asyncApiDocument(catalog)));
    expect(diagnostics.filter((d) => d.severity === 0).map((d) => d.message)).toEqual([]);
    expect(
      document
        ?.channels()
        .all()
        .map((c) => c.address()),
    ).toEqual(['eventbus.order', 'eventbus.user']);
    expect(document?.messages().all().length).toBe(3);
    // The parser loads its rule set on first use: seconds on a loaded 2-core machine.
  }, 60_000);

  it('says what to pass when a schema cannot give a JSON Schema', () => {
    const bare = defineEvent({ type: 'user.deleted', schema: { '~standard': { version: 1, vendor: 'valibot', validate: (value: unknown) => ({ value }) } } });
    expect(() => asyncApiDocument(defineCatalog({ contracts: [bare] }))).toThrow(/valibot schema has no JSON Schema converter.+pass jsonSchema to defineEvent/);
  });
});
