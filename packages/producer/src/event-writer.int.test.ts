import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { context, createTraceState, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { testDatabase } from '@eventbus/dev-services/test';
import type { TestDatabase } from '@eventbus/dev-services';
import { shardForTenant, SLEEP_LOCK_NAMESPACE } from '@eventbus/schema';
import { EventBusError, withCorrelationId } from '@eventbus/core';
import { EventWriter, type EventInput } from './index.js';

let database: TestDatabase;
let pool: pg.Pool;
let db: NodePgDatabase;

beforeAll(async () => {
  // What @opentelemetry/sdk-node registers in an app: context that follows async calls.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  database = await testDatabase('producer');
  pool = new pg.Pool({ connectionString: database.url, max: 10 });
  db = drizzle(pool);
  await pool.query('CREATE TABLE public.orders (id text PRIMARY KEY, tenant_id text NOT NULL, total int NOT NULL)');
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

const counts = async () => {
  const { rows } = await pool.query(
    `SELECT (SELECT count(*) FROM eventbus.event_log)::int AS events, (SELECT count(*) FROM eventbus.outbox)::int AS outbox,
            (SELECT count(*) FROM public.orders)::int AS orders`,
  );
  return rows[0] as { events: number; outbox: number; orders: number };
};

const event = (over: Partial<EventInput> = {}): EventInput => ({
  tenantId: 'tenant-a',
  eventKey: `key-${Math.random()}`,
  eventType: 'order.placed',
  payload: { orderId: 'o-1', total: 42 },
  ...over,
});

describe('EventWriter (real Postgres)', () => {
  it('runs its insert as a named prepared statement on the caller’s transaction, or plainly when told not to', async () => {
    const prepared = (tx: Parameters<Parameters<typeof db.transaction>[0]>[0]) =>
      tx.execute(sql`SELECT name FROM pg_prepared_statements WHERE name LIKE 'eventbus_%' ORDER BY name`).then((r) => r.rows.map((row) => row.name));
    // One client for both, so the second sees what the first left on the connection.
    const client = await pool.connect();
    try {
      const single = drizzle(client);
      const plain = await single.transaction(async (tx) => {
        await new EventWriter(tx, { preparedStatements: false }).writeEventWithOutbox(event());
        return prepared(tx);
      });
      expect(plain).toEqual([]);
      const rolledBack = await single
        .transaction(async (tx) => {
          await new EventWriter(tx).writeEventWithOutbox(event({ eventKey: 'prepared-rolled-back' }));
          await new EventWriter(tx).writeEvent(event({ eventKey: 'prepared-log-only' }));
          await new EventWriter(tx).writeEventsWithOutbox([event({ eventKey: 'prepared-batch-1' }), event({ eventKey: 'prepared-batch-2' })]);
          // One statement per shape: a single event's plain insert, and the batch's unnest.
          expect(await prepared(tx)).toEqual(['eventbus_insert_event', 'eventbus_insert_event_with_outbox', 'eventbus_insert_events_with_outbox']);
          throw new Error('roll back');
        })
        .catch((error: Error) => error.message);
      expect(rolledBack).toBe('roll back');
      // The prepared insert ran inside the transaction: its rows went with the rollback.
      const { rows } = await pool.query(
        `SELECT count(*)::int AS n FROM eventbus.event_log WHERE event_key IN ('prepared-rolled-back', 'prepared-log-only', 'prepared-batch-1', 'prepared-batch-2')`,
      );
      expect(rows[0].n).toBe(0);
    } finally {
      client.release();
    }
  });

  it('commits the event rows with the caller’s domain change', async () => {
    const before = await counts();
    const result = await db.transaction(async (tx) => {
      await tx.execute(sql`INSERT INTO public.orders VALUES ('o-commit', 'tenant-a', 42)`);
      return new EventWriter(tx).writeEventWithOutbox(event({ eventKey: 'order-o-commit-placed' }));
    });
    expect(result.duplicate).toBe(false);
    expect(result.outboxId).toMatch(/^\d+$/);
    const after = await counts();
    expect(after).toEqual({ events: before.events + 1, outbox: before.outbox + 1, orders: before.orders + 1 });
    const { rows } = await pool.query('SELECT event_id::text FROM eventbus.outbox WHERE id = $1', [result.outboxId]);
    expect(rows[0].event_id).toBe(result.eventLogId);
  });

  it('rolls the event rows back with the caller’s domain change', async () => {
    const before = await counts();
    await expect(
      db.transaction(async (tx) => {
        await tx.execute(sql`INSERT INTO public.orders VALUES ('o-rollback', 'tenant-a', 1)`);
        await new EventWriter(tx).writeEventWithOutbox(event({ eventKey: 'order-o-rollback-placed' }));
        throw new Error('domain failure after the event was written');
      }),
    ).rejects.toThrow('domain failure');
    expect(await counts()).toEqual(before);
  });

  it('writes the EventLog only with writeEvent', async () => {
    const before = await counts();
    const id = await new EventWriter(db).writeEvent(event({ eventKey: 'audit-only' }));
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const after = await counts();
    expect(after.events).toBe(before.events + 1);
    expect(after.outbox).toBe(before.outbox);
  });

  it('stores every field, the active trace context, a correlation id and the outbox shard, for one event and for a batch', async () => {
    const spanContext = {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.SAMPLED,
      traceState: createTraceState('vendor=value'),
    };
    const full = (eventKey: string, tenantId: string) =>
      event({ eventKey, tenantId, projectId: 'p-1', causationId: 'cause-1', version: 3, correlationId: 'corr-1' });
    const written = await context.with(trace.setSpanContext(context.active(), spanContext), async () => {
      const writer = new EventWriter(db);
      // One event and a batch run different statements: both must fill every column.
      const one = await writer.writeEventWithOutbox(full('full', 'tenant-a'));
      const batch = await writer.writeEventsWithOutbox([full('full-batch-1', 'tenant-b'), full('full-batch-2', 'tenant-c')]);
      return [
        { ...one, tenantId: 'tenant-a', eventKey: 'full' },
        { ...batch[0]!, tenantId: 'tenant-b', eventKey: 'full-batch-1' },
        { ...batch[1]!, tenantId: 'tenant-c', eventKey: 'full-batch-2' },
      ];
    });
    for (const { eventLogId, outboxId, tenantId, eventKey } of written) {
      const { rows } = await pool.query('SELECT * FROM eventbus.event_log WHERE id = $1', [eventLogId]);
      expect(rows[0]).toMatchObject({
        tenant_id: tenantId,
        project_id: 'p-1',
        event_key: eventKey,
        event_type: 'order.placed',
        event_version: 3,
        payload: { orderId: 'o-1', total: 42 },
        correlation_id: 'corr-1',
        causation_id: 'cause-1',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        tracestate: 'vendor=value',
      });
      const outbox = await pool.query('SELECT event_id::text, shard FROM eventbus.outbox WHERE id = $1', [outboxId]);
      expect(outbox.rows[0]).toEqual({ event_id: eventLogId, shard: shardForTenant(tenantId) });
    }
  });

  it('takes the correlation id from the caller’s context, else generates one', async () => {
    const writer = new EventWriter(db);
    const fromContext = await withCorrelationId('request-456', () => writer.writeEventWithOutbox(event()));
    const generated = await writer.writeEventWithOutbox(event());
    const { rows } = await pool.query('SELECT id::text, correlation_id FROM eventbus.event_log WHERE id = ANY($1::uuid[])', [
      [fromContext.eventLogId, generated.eventLogId],
    ]);
    const byId = Object.fromEntries(rows.map((r) => [r.id, r.correlation_id]));
    expect(byId[fromContext.eventLogId]).toBe('request-456');
    expect(byId[generated.eventLogId]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('dedupes by tenant and event key, returning the original ids', async () => {
    const writer = new EventWriter(db);
    const first = await writer.writeEventWithOutbox(event({ eventKey: 'dedupe-me' }));
    const before = await counts();
    const second = await writer.writeEventWithOutbox(event({ eventKey: 'dedupe-me', payload: { other: true } }));
    expect(second).toEqual({ eventLogId: first.eventLogId, outboxId: first.outboxId, duplicate: true });
    expect(await writer.writeEvent(event({ eventKey: 'dedupe-me' }))).toBe(first.eventLogId);
    expect(await counts()).toEqual(before);
    // The same key under another tenant is another event.
    const otherTenant = await writer.writeEventWithOutbox(event({ eventKey: 'dedupe-me', tenantId: 'tenant-b' }));
    expect(otherTenant.duplicate).toBe(false);
  });

  it('dedupes two transactions racing on the same key: one row, no error for the loser', async () => {
    const before = await counts();
    const clients = await Promise.all([pool.connect(), pool.connect()]);
    try {
      const [a, b] = clients.map((c) => drizzle(c));
      await a!.execute(sql`BEGIN`);
      await b!.execute(sql`BEGIN`);
      const first = await new EventWriter(a!).writeEventWithOutbox(event({ eventKey: 'race' }));
      // b blocks on the unique index until a commits, then inserts nothing.
      const secondPromise = new EventWriter(b!).writeEventWithOutbox(event({ eventKey: 'race' }));
      await new Promise((r) => setTimeout(r, 100));
      await a!.execute(sql`COMMIT`);
      const second = await secondPromise;
      await b!.execute(sql`COMMIT`);
      expect(first.duplicate).toBe(false);
      expect(second).toEqual({ eventLogId: first.eventLogId, outboxId: first.outboxId, duplicate: true });
    } finally {
      for (const c of clients) c.release();
    }
    const after = await counts();
    expect(after.events).toBe(before.events + 1);
    expect(after.outbox).toBe(before.outbox + 1);
  });

  it('writes a batch in one statement, in input order, reporting duplicates inside the batch', async () => {
    const inputs = Array.from({ length: 50 }, (_, i) => event({ eventKey: `bulk-${i}`, payload: { i } }));
    inputs.push(event({ eventKey: 'bulk-3' }));
    const results = await new EventWriter(db).writeEventsWithOutbox(inputs);
    expect(results).toHaveLength(51);
    expect(results.slice(0, 50).every((r) => !r.duplicate)).toBe(true);
    expect(results[50]).toMatchObject({ duplicate: true, eventLogId: results[3]!.eventLogId });
    const ids = results.slice(0, 50).map((r) => BigInt(r.outboxId!));
    expect([...ids].sort((x, y) => (x < y ? -1 : 1))).toEqual(ids);
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the EventLog with a clear error', async () => {
    await new EventWriter(db).writeEvent(event({ eventKey: 'immutable' }));
    for (const statement of [
      `UPDATE eventbus.event_log SET payload = '{}' WHERE event_key = 'immutable'`,
      `DELETE FROM eventbus.event_log WHERE event_key = 'immutable'`,
      'TRUNCATE eventbus.event_log CASCADE',
    ]) {
      await expect(pool.query(statement)).rejects.toThrow(/eventbus.event_log is append-only/);
    }
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM eventbus.event_log WHERE event_key = 'immutable'`);
    expect(rows[0].n).toBe(1);
  });

  it('sends one NOTIFY per transaction for one tenant whose relay lane sleeps, however many events it writes, naming only the shard', async () => {
    const listener = new pg.Client({ connectionString: database.url });
    await listener.connect();
    try {
      const received: string[] = [];
      listener.on('notification', (n) => received.push(n.payload ?? ''));
      await listener.query('LISTEN eventbus_outbox');
      // This connection plays a relay lane asleep on tenant-a's shard (drizzle/0006): without
      // one, no producer notifies.
      await listener.query('SELECT pg_advisory_lock($1, $2)', [SLEEP_LOCK_NAMESPACE, shardForTenant('tenant-a')]);
      await db.transaction(async (tx) => {
        const writer = new EventWriter(tx);
        await writer.writeEventsWithOutbox(Array.from({ length: 100 }, (_, i) => event({ eventKey: `notify-bulk-${i}` })));
        for (let i = 0; i < 5; i++) await writer.writeEventWithOutbox(event({ eventKey: `notify-single-${i}` }));
      });
      await new Promise((r) => setTimeout(r, 300));
      // Six statements, one tenant: Postgres folds the identical notifications into one. The
      // payload is the hex shard mask (drizzle/0006), never event data.
      expect(received).toEqual([(1n << BigInt(shardForTenant('tenant-a'))).toString(16)]);
    } finally {
      await listener.end();
    }
  });

  describe('bad input: a typed error that says what to fix, nothing written, transaction still usable', () => {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    const bad: Array<[string, unknown, string, RegExp]> = [
      ['missing tenantId', { ...event(), tenantId: undefined }, 'INVALID_EVENT', /tenantId is required/],
      ['empty tenantId', event({ tenantId: '' }), 'INVALID_EVENT', /tenantId must not be empty/],
      ['blank tenantId', event({ tenantId: '   ' }), 'INVALID_EVENT', /tenantId must not be empty/],
      ['numeric tenantId', event({ tenantId: 42 as unknown as string }), 'INVALID_EVENT', /tenantId must be a string/],
      ['missing eventKey', { ...event(), eventKey: undefined }, 'INVALID_EVENT', /eventKey is required/],
      ['empty eventKey', event({ eventKey: '' }), 'INVALID_EVENT', /eventKey must not be empty/],
      ['missing eventType', { ...event(), eventType: undefined }, 'INVALID_EVENT', /eventType is required/],
      ['empty eventType', event({ eventType: '' }), 'INVALID_EVENT', /eventType must not be empty/],
      ['one-segment type', event({ eventType: 'product' }), 'INVALID_EVENT_TYPE', /at least 2 dot-separated segments/],
      ['uppercase type', event({ eventType: 'Product.Created' }), 'INVALID_EVENT_TYPE', /lowercase/],
      ['empty segment', event({ eventType: 'product..created' }), 'INVALID_EVENT_TYPE', /segment ""/],
      ['trailing dot', event({ eventType: 'product.created.' }), 'INVALID_EVENT_TYPE', /segment ""/],
      ['spaces in type', event({ eventType: 'product created' }), 'INVALID_EVENT_TYPE', /segments/],
      ['wildcard in type', event({ eventType: 'product.*' }), 'INVALID_EVENT_TYPE', /segment "\*"/],
      ['too many segments', event({ eventType: 'a.b.c.d.e.f.g.h.i' }), 'INVALID_EVENT_TYPE', /more than 8 segments/],
      ['digit-first segment', event({ eventType: '1product.created' }), 'INVALID_EVENT_TYPE', /start with a letter/],
      ['BigInt in payload', event({ payload: { amount: 10n } }), 'INVALID_PAYLOAD', /payload\.amount is a BigInt/],
      ['cycle in payload', event({ payload: cycle }), 'INVALID_PAYLOAD', /payload\.self refers back/],
      ['function in payload', event({ payload: { f: () => 1 } }), 'INVALID_PAYLOAD', /payload\.f is a function/],
      ['undefined in payload', event({ payload: { x: undefined } }), 'INVALID_PAYLOAD', /payload\.x is undefined/],
      ['undefined payload', { ...event(), payload: undefined }, 'INVALID_PAYLOAD', /payload is required/],
      ['NaN in payload', event({ payload: { n: Number.NaN } }), 'INVALID_PAYLOAD', /payload\.n is NaN/],
      ['Infinity in array', event({ payload: [1, Infinity] }), 'INVALID_PAYLOAD', /payload\[1\] is Infinity/],
      ['Map in payload', event({ payload: { m: new Map() } }), 'INVALID_PAYLOAD', /payload\.m is a Map object/],
      ['symbol in payload', event({ payload: { s: Symbol('x') } }), 'INVALID_PAYLOAD', /payload\.s is a symbol/],
      ['NUL in payload string', event({ payload: { s: 'a\u0000b' } }), 'INVALID_PAYLOAD', /payload\.s contains a NUL/],
      ['NUL in tenantId', event({ tenantId: 't\u0000' }), 'INVALID_EVENT', /tenantId must not contain NUL/],
      ['NUL in eventKey', event({ eventKey: 'k\u0000' }), 'INVALID_EVENT', /eventKey must not contain NUL/],
      ['over-long tenantId', event({ tenantId: 't'.repeat(129) }), 'INVALID_EVENT', /tenantId must be at most 128/],
      ['over-long eventKey', event({ eventKey: 'k'.repeat(513) }), 'INVALID_EVENT', /eventKey must be at most 512/],
      ['over-long correlationId', event({ correlationId: 'c'.repeat(257) }), 'INVALID_EVENT', /correlationId must be at most 256/],
      ['payload over the limit', event({ payload: { blob: 'x'.repeat(300 * 1024) } }), 'PAYLOAD_TOO_LARGE', /over the limit of 262144/],
      ['version zero', event({ version: 0 }), 'INVALID_EVENT', /version must be an integer from 1/],
      ['fractional version', event({ version: 1.5 }), 'INVALID_EVENT', /version must be an integer/],
      ['null input', null, 'INVALID_EVENT', /input must be an object/],
    ];

    it.each(bad)('%s', async (_label, input, code, message) => {
      const before = await counts();
      await db.transaction(async (tx) => {
        const writer = new EventWriter(tx);
        const error = await writer.writeEventWithOutbox(input as EventInput).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(EventBusError);
        expect((error as EventBusError).code).toBe(code);
        expect((error as EventBusError).message).toMatch(message);
        // Validation ran before any SQL: the transaction is still usable.
        await tx.execute(sql`SELECT 1`);
      });
      expect(await counts()).toEqual(before);
    });

    it('a bad event in a batch rejects the whole batch and names its position', async () => {
      const before = await counts();
      const error = await new EventWriter(db).writeEventsWithOutbox([event(), event(), event({ eventType: 'Bad' })]).catch((e: unknown) => e as EventBusError);
      expect(error).toBeInstanceOf(EventBusError);
      expect((error as EventBusError).message).toMatch(/^events\[2\]\.eventType/);
      expect(await counts()).toEqual(before);
    });

    it('a configurable payload limit', async () => {
      const writer = new EventWriter(db, { maxPayloadBytes: 64 });
      await expect(writer.writeEventWithOutbox(event({ payload: { s: 'x'.repeat(100) } }))).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    });
  });
});
