import type { StoredEvent } from '@eventbus/core';

/**
 * The producer's writes: events into eventbus.event_log and, for events the relay publishes,
 * their rows in eventbus.outbox, in one statement that @eventbus/producer's EventWriter runs on
 * the caller's database or transaction. Hot: `pnpm bench --only producer` measures it.
 */

/** One event as the insert writes it: validated, with its id, correlation id, shard and trace context assigned. */
export type NewEventRow = Omit<StoredEvent, 'createdAt' | 'correlationId'> & { correlationId: string; shard: number };

/**
 * Names of the prepared inserts, one per statement text: node-postgres refuses a name reused
 * for another text. The batch statement's text does not depend on the number of events (each
 * column is one array parameter), so one name per shape serves every call.
 */
export const INSERT_EVENTS_STATEMENT_NAME = {
  withOutbox: 'eventbus_insert_events_with_outbox',
  logOnly: 'eventbus_insert_events',
  oneWithOutbox: 'eventbus_insert_event_with_outbox',
  oneLogOnly: 'eventbus_insert_event',
} as const;

/**
 * A statement as node-postgres runs it. The writer's statements are fixed texts built once:
 * turning a Drizzle `sql` template into text on every call was most of the writer's
 * JavaScript per event (a CPU profile of writes against a stub database: ~70 of 120 µs).
 */
export interface Query {
  sql: string;
  params: unknown[];
}

/** A row of an insert's result: one per event inserted (a duplicate has none). */
export interface InsertRow {
  /** The event's 1-based position in the input. */
  position: string | number;
  inserted: boolean;
  outbox_id: string | null;
}

/** A row of findOriginalsQuery's result. */
export interface OriginalRow {
  id: string;
  tenant_id: string;
  event_key: string;
  outbox_id: string | null;
}

const LOG_COLUMNS = 'id, tenant_id, project_id, event_key, event_type, event_version, payload, correlation_id, causation_id, traceparent, tracestate';

/** The event-log columns as NewEventRow fields, in LOG_COLUMNS' order, then the outbox's shard. */
const FIELDS = [
  'id',
  'tenantId',
  'projectId',
  'eventKey',
  'eventType',
  'version',
  'payloadJson',
  'correlationId',
  'causationId',
  'traceparent',
  'tracestate',
  'shard',
] as const satisfies ReadonlyArray<keyof NewEventRow>;
const TYPES = ['uuid', 'text', 'text', 'text', 'text', 'int', 'jsonb', 'text', 'text', 'text', 'text', 'smallint'] as const;

/**
 * One event: a plain INSERT … VALUES, and its outbox row from the same statement. No unnest,
 * ordinality or joins to plan and run, and no array literals to build and parse (the payload
 * escaped inside a jsonb[] literal): the shape of a hand-written insert. ON CONFLICT DO
 * NOTHING makes the (tenant, key) dedupe race-free as in the batch statement; a duplicate
 * returns no row.
 */
const ONE_VALUES = `VALUES (${TYPES.slice(0, 11)
  .map((type, i) => `$${i + 1}::${type}`)
  .join(', ')})`;
const INSERT_ONE = `INSERT INTO eventbus.event_log (${LOG_COLUMNS}) ${ONE_VALUES} ON CONFLICT (tenant_id, event_key) DO NOTHING`;
const ONE_WITH_OUTBOX_SQL = `WITH inserted AS (${INSERT_ONE} RETURNING id)
  INSERT INTO eventbus.outbox (event_id, shard) SELECT id, $12::smallint FROM inserted
  RETURNING 1 AS position, true AS inserted, id::text AS outbox_id`;
const ONE_LOG_ONLY_SQL = `${INSERT_ONE} RETURNING 1 AS position, true AS inserted, NULL::text AS outbox_id`;

/**
 * Many events in one statement: unnest() turns column arrays into rows, so a bulk write costs
 * one round trip and one plan. ON CONFLICT DO NOTHING makes the (tenant, key) dedupe
 * race-free: a concurrent writer of the same key waits on the unique index and then inserts
 * nothing, without an error that would abort the caller's transaction. Outbox rows are
 * inserted in input order, so their ids (the relay's publish order) follow it.
 */
const BATCH_INPUT = `SELECT * FROM unnest(${TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')})
  WITH ORDINALITY AS t(${LOG_COLUMNS}, shard, position)`;
const BATCH_INSERT_LOG = `INSERT INTO eventbus.event_log (${LOG_COLUMNS})
  SELECT ${LOG_COLUMNS} FROM input ORDER BY position
  ON CONFLICT (tenant_id, event_key) DO NOTHING
  RETURNING id`;
const BATCH_WITH_OUTBOX_SQL = `WITH input AS (${BATCH_INPUT}), inserted AS (${BATCH_INSERT_LOG}),
  outboxed AS (
    INSERT INTO eventbus.outbox (event_id, shard)
    SELECT input.id, input.shard FROM input JOIN inserted ON inserted.id = input.id ORDER BY input.position
    RETURNING id, event_id
  )
  SELECT input.position, true AS inserted, outboxed.id::text AS outbox_id
  FROM input JOIN outboxed ON outboxed.event_id = input.id`;
const BATCH_LOG_ONLY_SQL = `WITH input AS (${BATCH_INPUT}), inserted AS (${BATCH_INSERT_LOG})
  SELECT input.position, true AS inserted, NULL::text AS outbox_id
  FROM input JOIN inserted ON inserted.id = input.id`;

/**
 * The insert of `events` into the event log and, `withOutbox`, their outbox rows, with the
 * name to prepare it under: a single event takes the one-row statement, several the batch.
 * Returns one InsertRow per event inserted.
 */
export function insertEventsQuery(events: readonly NewEventRow[], options: { withOutbox: boolean }): Query & { name: string } {
  if (events.length === 1) {
    const event = events[0]!;
    const params: unknown[] = FIELDS.map((field) => event[field]);
    if (options.withOutbox) return { name: INSERT_EVENTS_STATEMENT_NAME.oneWithOutbox, sql: ONE_WITH_OUTBOX_SQL, params };
    params.pop(); // the shard: the outbox's only
    return { name: INSERT_EVENTS_STATEMENT_NAME.oneLogOnly, sql: ONE_LOG_ONLY_SQL, params };
  }
  const params = FIELDS.map((field) => events.map((event) => event[field]));
  return options.withOutbox
    ? { name: INSERT_EVENTS_STATEMENT_NAME.withOutbox, sql: BATCH_WITH_OUTBOX_SQL, params }
    : { name: INSERT_EVENTS_STATEMENT_NAME.logOnly, sql: BATCH_LOG_ONLY_SQL, params };
}

const FIND_ORIGINALS_SQL = `SELECT e.id, e.tenant_id, e.event_key, o.id::text AS outbox_id
  FROM unnest($1::text[], $2::text[]) AS k(tenant_id, event_key)
  JOIN eventbus.event_log e ON e.tenant_id = k.tenant_id AND e.event_key = k.event_key
  LEFT JOIN eventbus.outbox o ON o.event_id = e.id`;

/**
 * The stored (tenant_id, event_key) rows of events the insert skipped as duplicates, with
 * their outbox row when one is still waiting (see EventWriter's resolveDuplicates for why
 * this is a second statement).
 */
export function findOriginalsQuery(events: readonly NewEventRow[]): Query {
  return { sql: FIND_ORIGINALS_SQL, params: [events.map((e) => e.tenantId), events.map((e) => e.eventKey)] };
}
