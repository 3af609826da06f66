import { sql, type SQL } from 'drizzle-orm';
import type { StoredEvent } from '@eventbus/core';

/**
 * The producer's writes: events into eventbus.event_log and, for events the relay publishes,
 * their rows in eventbus.outbox, in one statement that @eventbus/producer's EventWriter runs on
 * the caller's database or transaction. Hot: `pnpm bench --only producer` measures it.
 */

/** One event as the insert writes it: validated, with its id, correlation id, shard and trace context assigned. */
export type NewEventRow = Omit<StoredEvent, 'createdAt' | 'correlationId'> & { correlationId: string; shard: number };

/**
 * Names of the prepared inserts. The statement text does not depend on the number of
 * events (each column is one array parameter), so one name per shape serves every call.
 */
export const INSERT_EVENTS_STATEMENT_NAME = { withOutbox: 'eventbus_insert_events_with_outbox', logOnly: 'eventbus_insert_events' } as const;

/** A row of insertEventsStatement's result: one per event inserted (a duplicate has none). */
export interface InsertRow {
  /** The event's 1-based position in the input. */
  position: string | number;
  inserted: boolean;
  outbox_id: string | null;
}

/** A row of findOriginalsStatement's result. */
export interface OriginalRow {
  id: string;
  tenant_id: string;
  event_key: string;
  outbox_id: string | null;
}

/**
 * One statement for one or many events: unnest() turns column arrays into rows, so a bulk
 * write costs one round trip and one plan. ON CONFLICT DO NOTHING makes the (tenant, key)
 * dedupe race-free: a concurrent writer of the same key waits on the unique index and then
 * inserts nothing, without an error that would abort the caller's transaction. Outbox rows
 * are inserted in input order, so their ids (the relay's publish order) follow it.
 */
export function insertEventsStatement(events: readonly NewEventRow[], options: { withOutbox: boolean }): SQL {
  const column = <K extends keyof NewEventRow>(key: K) => sql.param(events.map((e) => e[key]));
  const input = sql`
    SELECT * FROM unnest(
      ${column('id')}::uuid[], ${column('tenantId')}::text[], ${column('projectId')}::text[],
      ${column('eventKey')}::text[], ${column('eventType')}::text[], ${column('version')}::int[],
      ${column('payloadJson')}::jsonb[], ${column('correlationId')}::text[], ${column('causationId')}::text[],
      ${column('traceparent')}::text[], ${column('tracestate')}::text[], ${column('shard')}::smallint[]
    ) WITH ORDINALITY AS t(id, tenant_id, project_id, event_key, event_type, event_version, payload,
                           correlation_id, causation_id, traceparent, tracestate, shard, position)`;
  const insertLog = sql`
    INSERT INTO eventbus.event_log (id, tenant_id, project_id, event_key, event_type, event_version, payload,
                                    correlation_id, causation_id, traceparent, tracestate)
    SELECT id, tenant_id, project_id, event_key, event_type, event_version, payload,
           correlation_id, causation_id, traceparent, tracestate
    FROM input ORDER BY position
    ON CONFLICT (tenant_id, event_key) DO NOTHING
    RETURNING id`;
  if (!options.withOutbox) {
    return sql`WITH input AS (${input}), inserted AS (${insertLog})
      SELECT input.position, true AS inserted, NULL::text AS outbox_id
      FROM input JOIN inserted ON inserted.id = input.id`;
  }
  return sql`WITH input AS (${input}), inserted AS (${insertLog}),
    outboxed AS (
      INSERT INTO eventbus.outbox (event_id, shard)
      SELECT input.id, input.shard FROM input JOIN inserted ON inserted.id = input.id ORDER BY input.position
      RETURNING id, event_id
    )
    SELECT input.position, true AS inserted, outboxed.id::text AS outbox_id
    FROM input JOIN outboxed ON outboxed.event_id = input.id`;
}

/**
 * The stored (tenant_id, event_key) rows of events the insert skipped as duplicates, with
 * their outbox row when one is still waiting (see EventWriter's resolveDuplicates for why
 * this is a second statement).
 */
export function findOriginalsStatement(events: readonly NewEventRow[]): SQL {
  return sql`
    SELECT e.id, e.tenant_id, e.event_key, o.id::text AS outbox_id
    FROM unnest(${sql.param(events.map((e) => e.tenantId))}::text[], ${sql.param(events.map((e) => e.eventKey))}::text[]) AS k(tenant_id, event_key)
    JOIN eventbus.event_log e ON e.tenant_id = k.tenant_id AND e.event_key = k.event_key
    LEFT JOIN eventbus.outbox o ON o.event_id = e.id`;
}
