import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { TopicRouter, type BusEvent } from '@eventbus/core';
import { PublishError, type MessagePublisher, type OutboundMessage } from '@eventbus/kafka';
import { EventWriter } from '@eventbus/producer';
import { uniqueName, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { COUNT_MATCHING_EVENTS_BY_IDS_SQL, FIND_EVENT_IDS_SQL, READ_EVENT_PAGE_BY_IDS_SQL } from '@eventbus/outbox';
import { decodeResumeToken, EventReplay, republishEvents } from '../src/index.js';

let database: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  database = await testDatabase('replay-lib');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  pool.on('error', () => undefined);
});
afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

/** Writes events the way producers do: a bulk write in one transaction, then single writes. */
async function writeHistory(tenantId: string): Promise<string[]> {
  const writer = new EventWriter(drizzle(pool));
  const ids: string[] = [];
  const bulk = await writer.writeEventsWithOutbox(
    Array.from({ length: 120 }, (_, i) => ({
      tenantId,
      eventKey: `bulk-${i}`,
      eventType: i % 3 === 0 ? 'order.placed' : 'product.updated',
      payload: { i },
      correlationId: i < 60 ? 'import-1' : 'import-2',
    })),
  );
  ids.push(...bulk.map((r) => r.eventLogId));
  for (let i = 0; i < 5; i++)
    ids.push(await writer.writeEvent({ tenantId, eventKey: `single-${i}`, eventType: 'product.variant.created', payload: { i: 120 + i } }));
  return ids;
}

/** A MessagePublisher that keeps what it was given (the port's contract, without Kafka). */
class RecordingPublisher implements MessagePublisher {
  readonly sent: OutboundMessage[] = [];
  onPublish: (() => void) | undefined;
  async connect() {}
  async publish(messages: readonly OutboundMessage[]) {
    this.sent.push(...messages);
    this.onPublish?.();
  }
  async disconnect() {}
}

describe('EventReplay (in-process, real Postgres)', () => {
  it('hands each matching event to the subscribed handlers in write order, bulk writes included', async () => {
    const tenantId = uniqueName('shop-');
    const ids = await writeHistory(tenantId);
    await writeHistory(uniqueName('other-'));
    const replay = new EventReplay(drizzle(pool));
    const products: BusEvent[] = [];
    const deep: string[] = [];
    replay.subscribe({ eventTypes: ['product.*'], handler: (event) => void products.push(event) });
    replay.subscribe({ eventTypes: ['product.#'], handler: (event) => void deep.push(event.id) });

    const processed = await replay.replay({ tenantId, eventTypes: ['product.#'], pageSize: 17 });
    const expected = ids.filter((_, i) => i >= 120 || i % 3 !== 0);
    expect(processed).toBe(expected.length);
    expect(deep).toEqual(expected);
    // `*` is one segment: product.variant.created is not product.*.
    expect(products.map((e) => e.id)).toEqual(ids.filter((_, i) => i < 120 && i % 3 !== 0));
    expect(products[0]).toMatchObject({ tenantId, eventType: 'product.updated', payload: { i: 1 }, correlationId: 'import-1' });
    expect(new Set(products.map((e) => e.tenantId))).toEqual(new Set([tenantId]));
  });

  it('filters by date window and correlation id', async () => {
    const tenantId = uniqueName('window-');
    await pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
       SELECT gen_random_uuid(), $1, 'k' || i, 'product.created', jsonb_build_object('i', i), 'c' || (i % 2), timestamptz '2026-01-01' + i * interval '1 day'
       FROM generate_series(0, 30) i`,
      [tenantId],
    );
    const replay = new EventReplay(pool);
    const seen: number[] = [];
    replay.subscribe({ eventTypes: ['#'], handler: (e) => void seen.push((e.payload as { i: number }).i) });
    const count = await replay.replay({
      tenantId,
      eventTypes: ['product.created'],
      fromDate: new Date('2026-01-05'),
      toDate: new Date('2026-01-10'),
      correlationId: 'c1',
    });
    expect(count).toBe(3);
    expect(seen).toEqual([5, 7, 9]);
  });

  it('stops after the page in progress when the signal aborts', async () => {
    const tenantId = uniqueName('abort-');
    await writeHistory(tenantId);
    const controller = new AbortController();
    const replay = new EventReplay(pool);
    let handled = 0;
    replay.subscribe({ eventTypes: ['#'], handler: () => void (++handled === 25 && controller.abort()) });
    const processed = await replay.replay({ tenantId, signal: controller.signal, pageSize: 20 });
    expect(processed).toBe(40); // the abort came in the second page, which is finished
    expect(handled).toBe(40);
  });

  it('refuses NUL bytes and bad patterns before any query', async () => {
    const replay = new EventReplay(pool);
    replay.subscribe({ eventTypes: ['#'], handler: () => {} });
    for (const options of [
      { tenantId: 'a\u0000' },
      { tenantId: 't', correlationId: 'x\u0000y' },
      { tenantId: 't', eventTypes: ["' OR 1=1 --"] },
      { tenantId: 't', fromDate: new Date('x') },
    ]) {
      await expect(replay.replay(options)).rejects.toMatchObject({ code: 'INVALID_CONFIG' });
    }
    expect(() => replay.subscribe({ eventTypes: ['product.(.*)'], handler: () => {} })).toThrow(/segment/);
  });
});

describe('replay by event id (real Postgres)', () => {
  it('hands over exactly the given events, not the other events of their transaction, and the other filters narrow them', async () => {
    const tenantId = uniqueName('by-id-');
    const ids = await writeHistory(tenantId);
    // The bulk write is one transaction: its 120 events share created_at, so no time window tells them apart.
    const { rows } = await pool.query('SELECT count(DISTINCT created_at)::int AS n FROM eventbus.event_log WHERE id = ANY ($1::uuid[])', [ids.slice(0, 120)]);
    expect(rows[0].n).toBe(1);
    const replay = new EventReplay(pool);
    const seen: string[] = [];
    replay.subscribe({ eventTypes: ['#'], handler: (event) => void seen.push(event.id) });
    // ids[3] is an order.placed, ids[4] and ids[7] product.updated; one given in upper case, one twice.
    const chosen = [ids[7]!, ids[3]!.toUpperCase(), ids[4]!, ids[7]!, ids[122]!];
    expect(await replay.replay({ tenantId, eventIds: chosen, pageSize: 2 })).toBe(4);
    expect(seen).toEqual([ids[3], ids[4], ids[7], ids[122]]);
    seen.length = 0;
    expect(await replay.replay({ tenantId, eventIds: chosen, eventTypes: ['product.*'] })).toBe(2);
    expect(seen).toEqual([ids[4], ids[7]]);
  });

  it('refuses ids the tenant does not have with UNKNOWN_EVENT_ID naming them, before any handler runs or anything is sent', async () => {
    const tenantId = uniqueName('unknown-');
    const ids = await writeHistory(tenantId);
    const otherTenants = await writeHistory(uniqueName('other-'));
    const neverWritten = '01890a5d-ac96-774b-bcce-b302099a8057';
    const eventIds = [ids[0]!, otherTenants[0]!, neverWritten];
    const replay = new EventReplay(pool);
    let handled = 0;
    replay.subscribe({ eventTypes: ['#'], handler: () => void handled++ });
    const refusal = {
      code: 'UNKNOWN_EVENT_ID',
      message: expect.stringContaining(`has no event ${[otherTenants[0], neverWritten].sort().join(', ')} in this EventLog`),
      details: { tenantId, eventIds: [otherTenants[0], neverWritten].sort() },
    };
    await expect(replay.replay({ tenantId, eventIds })).rejects.toMatchObject(refusal);
    expect(handled).toBe(0);
    const publisher = new RecordingPublisher();
    const target = { kind: 'topic' as const, topic: 'scratch' };
    for (const dryRun of [true, false]) {
      await expect(republishEvents(pool, { filter: { tenantId, eventIds }, target, publisher, dryRun })).rejects.toMatchObject(refusal);
    }
    expect(publisher.sent).toEqual([]);
  });

  it('is not held back by a transaction still open: every id found is committed, so only --to bounds it', async () => {
    const tenantId = uniqueName('open-');
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    try {
      // A session inside a transaction that started before the event was written.
      await holder.query('BEGIN');
      await holder.query('SELECT 1');
      const { rows } = await pool.query(
        `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id) VALUES (gen_random_uuid(), $1, 'k', 'order.placed', '{}', 'c') RETURNING id::text`,
        [tenantId],
      );
      const id = rows[0].id as string;
      const target = { kind: 'topic' as const, topic: 'scratch' };
      const publisher = new RecordingPublisher();
      const byId = await republishEvents(pool, { filter: { tenantId, eventIds: [id] }, target, publisher });
      expect(byId).toMatchObject({ sent: 1, total: 1, upperBound: { limitedBy: 'now', hiddenSessions: 0 } });
      expect(publisher.sent.map((m) => m.headers.ce_id)).toEqual([id]);
      // The same event by time waits for the open transaction: the bound stops before it.
      const byTime = await republishEvents(pool, { filter: { tenantId }, target, publisher, dryRun: true });
      expect(byTime).toMatchObject({ sent: 0, upperBound: { limitedBy: 'open-transaction' } });
      // --to still bounds a replay by id.
      const before = await republishEvents(pool, { filter: { tenantId, eventIds: [id], toDate: new Date('2020-01-01') }, target, publisher, dryRun: true });
      expect(before).toMatchObject({ sent: 0, total: 0, upperBound: { bound: '2020-01-01T00:00:00.000001Z', limitedBy: 'to' } });
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });

  it('an interrupted replay by id resumes from its token with the rest of the ids, nothing twice', async () => {
    const tenantId = uniqueName('id-resume-');
    const ids = await writeHistory(tenantId);
    const chosen = [ids[10]!, ids[20]!, ids[30]!, ids[124]!];
    const target = { kind: 'topic' as const, topic: 'scratch' };
    const publisher = new RecordingPublisher();
    const controller = new AbortController();
    publisher.onPublish = () => controller.abort();
    const first = await republishEvents(pool, { filter: { tenantId, eventIds: chosen }, target, publisher, pageSize: 1, signal: controller.signal });
    expect(first).toMatchObject({ interrupted: true, sent: 1, total: 4 });
    const point = decodeResumeToken(first.resumeToken!);
    publisher.onPublish = undefined;
    const rest = await republishEvents(pool, {
      filter: { tenantId, eventIds: chosen },
      target,
      publisher,
      pageSize: 1,
      after: point.cursor,
      replayId: point.replayId,
      upperBound: point.upperBound,
    });
    expect(rest).toMatchObject({ interrupted: false, sent: 3, total: 3 });
    expect(publisher.sent.map((m) => m.headers.ce_id)).toEqual(chosen);
  });

  it("finds, counts and reads the ids through the primary key, not through the tenant's index, also on a table without statistics", async () => {
    const tenantId = uniqueName('plan-');
    // A tenant with a long history, just loaded: a scan of its range of event_log_tenant_created_idx would read all of it.
    await pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
       SELECT gen_random_uuid(), $1, 'k' || i, 'order.placed', '{}', 'c', timestamptz '2026-01-01' + i * interval '1 second'
       FROM generate_series(1, 20000) i`,
      [tenantId],
    );
    const { rows } = await pool.query('SELECT id::text FROM eventbus.event_log WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT 3', [tenantId]);
    const ids = rows.map((r) => r.id as string);
    /** The plan's nodes that read event_log: their type, index and rows. */
    const scans = async (sql: string, params: unknown[]) => {
      const [{ 'QUERY PLAN': plan }] = (await pool.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params)).rows;
      const nodes: Array<Record<string, unknown>> = [];
      const walk = (node: Record<string, unknown>) => {
        nodes.push(node);
        for (const child of (node.Plans as Array<Record<string, unknown>> | undefined) ?? []) walk(child);
      };
      walk(plan[0].Plan);
      return nodes
        .filter((n) => n['Relation Name'] === 'event_log' || String(n['Index Name'] ?? '').startsWith('event_log'))
        .map((n) => ({ type: n['Node Type'], index: n['Index Name'] ?? null, rows: n['Actual Rows'] }));
    };
    const window = [tenantId, '-infinity', '00000000-0000-0000-0000-000000000000', 'infinity', null, null, ids];
    const statements: Array<[string, string, unknown[]]> = [
      ['page', READ_EVENT_PAGE_BY_IDS_SQL, [...window, 500]],
      ['count', COUNT_MATCHING_EVENTS_BY_IDS_SQL, window],
      ['find', FIND_EVENT_IDS_SQL, [tenantId, ids]],
    ];
    for (const analyzed of [false, true]) {
      if (analyzed) await pool.query('ANALYZE eventbus.event_log');
      for (const [name, sql, params] of statements) {
        const plan = await scans(sql, params);
        // An index scan of the primary key, or a bitmap of it; never more than the 3 rows asked for.
        const reads = plan.filter((n) => n.type !== 'Bitmap Heap Scan');
        expect({ name, analyzed, reads }).toEqual({
          name,
          analyzed,
          reads: [{ type: expect.stringMatching(/^(Index Scan|Bitmap Index Scan)$/), index: 'event_log_pkey', rows: 3 }],
        });
      }
    }
  });
});

describe('republishEvents (real Postgres, recording publisher)', () => {
  it('an aborted republish resumes from its token with no gap and no re-send', async () => {
    const tenantId = uniqueName('resume-');
    const ids = await writeHistory(tenantId);
    const target = { kind: 'event-topics' as const, router: new TopicRouter({ prefix: 'r.' }) };
    const publisher = new RecordingPublisher();
    const controller = new AbortController();
    let publishes = 0;
    publisher.onPublish = () => void (++publishes === 3 && controller.abort());
    const progress: number[] = [];
    const first = await republishEvents(pool, {
      filter: { tenantId },
      target,
      publisher,
      pageSize: 10,
      signal: controller.signal,
      onProgress: (p) => progress.push(p.sent),
    });
    expect(first).toMatchObject({ interrupted: true, sent: 30, total: ids.length, lastEventId: ids[29] });
    expect(progress).toEqual([0, 10, 20, 30]);

    const point = decodeResumeToken(first.resumeToken!);
    expect(point.replayId).toBe(first.replayId);
    const second = await republishEvents(pool, { filter: { tenantId }, target, publisher, pageSize: 10, after: point.cursor, replayId: point.replayId });
    expect(second).toMatchObject({ interrupted: false, sent: ids.length - 30, total: ids.length - 30 });
    expect(publisher.sent.map((m) => m.headers.ce_id)).toEqual(ids);
    expect(new Set(publisher.sent.map((m) => m.headers.ce_replayid))).toEqual(new Set([first.replayId]));
    expect(publisher.sent[0]).toMatchObject({ topic: 'r.order', key: tenantId });
  });

  it('retries a transient publish failure; a lasting one ends the replay with the point to resume from', async () => {
    const tenantId = uniqueName('flaky-');
    const ids = await writeHistory(tenantId);
    const target = { kind: 'topic' as const, topic: 'scratch' };
    const publisher = new RecordingPublisher();
    let calls = 0;
    // Call 2 fails once (retried, succeeds); from call 5 on, the broker is gone.
    publisher.publish = async (messages) => {
      calls++;
      if (calls === 2 || calls >= 5) throw new PublishError('transient', 'broker unreachable');
      publisher.sent.push(...messages);
    };
    const error = await republishEvents(pool, { filter: { tenantId }, target, publisher, pageSize: 25 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'PUBLISH_FAILED', retriable: true, details: { sent: 75, lastEventId: ids[74] } });
    expect(publisher.sent.map((m) => m.headers.ce_id)).toEqual(ids.slice(0, 75));
    const point = decodeResumeToken((error as { details: { resumeToken: string } }).details.resumeToken);
    publisher.publish = RecordingPublisher.prototype.publish;
    await republishEvents(pool, { filter: { tenantId }, target, publisher, pageSize: 25, after: point.cursor, replayId: point.replayId });
    expect(publisher.sent.map((m) => m.headers.ce_id)).toEqual(ids);
  });

  it('paces to --rate and sends nothing in a dry run', async () => {
    const tenantId = uniqueName('rate-');
    await pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id) SELECT gen_random_uuid(), $1, 'k' || i, 'product.created', '{}', 'c' FROM generate_series(1, 60) i`,
      [tenantId],
    );
    const target = { kind: 'topic' as const, topic: 'scratch' };
    const publisher = new RecordingPublisher();
    const dry = await republishEvents(pool, { filter: { tenantId }, target, publisher, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, sent: 60, total: 60 });
    expect(publisher.sent).toHaveLength(0);
    const started = Date.now();
    const paced = await republishEvents(pool, { filter: { tenantId }, target, publisher, ratePerSecond: 100 });
    // 60 events at 100/s: the last chunk may leave at ~0.5 s; generous upper bound for a busy machine.
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(paced.sent).toBe(60);
    expect(publisher.sent).toHaveLength(60);
  });
});
