import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { z } from 'zod';
import { testDatabase } from '@eventbus/dev-services/test';
import type { TestDatabase } from '@eventbus/dev-services';
import { contractEvent, defineEvent, EventWriter, PayloadValidationError } from './index.js';

const orderPlaced = defineEvent({
  type: 'order.placed',
  version: 2,
  schema: z.object({ orderId: z.string(), total: z.number().nonnegative() }),
  upcast: { 1: (v1: { orderId: string; amount: number }) => ({ orderId: v1.orderId, total: v1.amount }) },
});

let database: TestDatabase;
let pool: pg.Pool;
let db: NodePgDatabase;

beforeAll(async () => {
  database = await testDatabase('producer-contracts');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  db = drizzle(pool);
  await pool.query('CREATE TABLE public.orders (id text PRIMARY KEY)');
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

const stored = async (eventKey: string) => {
  const { rows } = await pool.query('SELECT event_type, event_version, payload FROM eventbus.event_log WHERE event_key = $1', [eventKey]);
  return rows[0] as { event_type: string; event_version: number; payload: unknown } | undefined;
};

describe('EventWriter with a contract (real Postgres)', () => {
  it("writes the contract's type and version and the schema's output as the payload", async () => {
    const result = await new EventWriter(db).writeEventWithOutbox(orderPlaced, {
      tenantId: 't1',
      eventKey: 'typed-1',
      // zod drops keys the schema does not declare: the stored payload is what consumers validate.
      payload: { orderId: 'o-1', total: 5, note: 'dropped' } as { orderId: string; total: number },
    });
    expect(result.duplicate).toBe(false);
    expect(result.outboxId).not.toBeNull();
    expect(await stored('typed-1')).toEqual({ event_type: 'order.placed', event_version: 2, payload: { orderId: 'o-1', total: 5 } });
  });

  it('refuses an invalid payload with the issues, writes nothing and leaves the transaction usable', async () => {
    const caught = await db.transaction(async (tx) => {
      const writer = new EventWriter(tx);
      const error = await writer
        .writeEventWithOutbox(orderPlaced, { tenantId: 't1', eventKey: 'bad-1', payload: { orderId: 'o-2', total: -1 } })
        .catch((e: unknown) => e);
      // The same transaction goes on: a domain row and a valid event commit together.
      await tx.execute(sql`INSERT INTO public.orders (id) VALUES ('o-2')`);
      await writer.writeEventWithOutbox(orderPlaced, { tenantId: 't1', eventKey: 'good-2', payload: { orderId: 'o-2', total: 1 } });
      return error;
    });
    expect(caught).toBeInstanceOf(PayloadValidationError);
    const error = caught as PayloadValidationError;
    expect(error.code).toBe('INVALID_PAYLOAD');
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]!.path).toEqual(['total']);
    expect(error.message).toMatch(/^payload of order\.placed v2 does not match its schema: total: /);
    expect(await stored('bad-1')).toBeUndefined();
    expect(await stored('good-2')).toMatchObject({ event_version: 2 });
    expect((await pool.query("SELECT id FROM public.orders WHERE id = 'o-2'")).rowCount).toBe(1);
  });

  it('writes a batch mixing contract events and untyped inputs; one invalid payload writes none', async () => {
    const writer = new EventWriter(db);
    const results = await writer.writeEventsWithOutbox([
      contractEvent(orderPlaced, { tenantId: 't2', eventKey: 'batch-1', payload: { orderId: 'o-3', total: 3 } }),
      { tenantId: 't2', eventKey: 'batch-2', eventType: 'order.placed', version: 1, payload: { orderId: 'o-3', amount: 3 } },
    ]);
    expect(results.map((r) => r.duplicate)).toEqual([false, false]);
    expect(await stored('batch-1')).toMatchObject({ event_version: 2 });
    expect(await stored('batch-2')).toMatchObject({ event_version: 1 });
    await expect(
      writer.writeEventsWithOutbox([
        contractEvent(orderPlaced, { tenantId: 't2', eventKey: 'batch-3', payload: { orderId: 'o-4', total: 4 } }),
        contractEvent(orderPlaced, { tenantId: 't2', eventKey: 'batch-4', payload: { orderId: 'o-4', total: Number.NaN } }),
      ]),
    ).rejects.toThrow(/^events\[1\]\.payload of order\.placed v2 does not match its schema: total: /);
    expect(await stored('batch-3')).toBeUndefined();
  });

  it('writeEvent takes a contract too (event log only)', async () => {
    await new EventWriter(db).writeEvent(orderPlaced, { tenantId: 't3', eventKey: 'log-1', payload: { orderId: 'o-5', total: 0 } });
    expect(await stored('log-1')).toEqual({ event_type: 'order.placed', event_version: 2, payload: { orderId: 'o-5', total: 0 } });
    const { rows } = await pool.query(
      "SELECT count(*)::int AS n FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id WHERE e.event_key = 'log-1'",
    );
    expect(rows[0].n).toBe(0);
  });
});
