import type pg from 'pg';
import { storedEventFromRow, type StoredEvent } from '@eventbus/core';

/**
 * A position in a tenant's EventLog, in (created_at, id) order: created_at as Postgres'
 * microsecond UTC text (a Date holds only milliseconds, and a cursor rounded down to the
 * millisecond would read the same rows again), and the event id. @eventbus/replay's
 * ReplayCursor has this shape.
 */
export interface EventLogCursor {
  createdAt: string;
  id: string;
}

/** Which of a tenant's events a page read or a count selects (@eventbus/replay's ResolvedReplayFilter has this shape). */
export interface EventLogFilter {
  tenantId: string;
  /** Anchored regexes, or null for every type. */
  typeRegexes: string[] | null;
  /** Inclusive lower bound on created_at, or null for the beginning. */
  fromDate: Date | null;
  /** Inclusive upper bound on created_at, or null for none. */
  toDate: Date | null;
  correlationId: string | null;
  /** Only these event ids (lowercase uuids), or null/absent for any; a page read and a count then go through the primary key. */
  eventIds?: string[] | null;
}

/** An EventLog row as replay reads it: the relay's StoredEvent plus its exact position. */
export interface ReplayedRow extends StoredEvent {
  cursor: EventLogCursor;
}

/**
 * One keyset page of a tenant's EventLog, in (created_at, id) order, after `cursor`.
 *
 * Why this shape:
 * - `tenant_id = $1 AND (created_at, id) > ($2, $3)` is a range on the index
 *   event_log_tenant_created_idx (tenant_id, created_at, id): each page starts where the
 *   last ended, so page N costs what page 1 costs (an OFFSET would re-read every earlier
 *   row) and memory holds one page, whatever the window's size.
 * - The first page starts at (fromDate, nil uuid), so the same statement serves every page
 *   and there is no `cursor IS NULL OR …`, which would stop the planner from using the
 *   row comparison as an index bound.
 * - The upper bound is exclusive ($4): min(--to + 1 µs, the visibility horizon), computed
 *   once when the replay starts (see @eventbus/replay's replayUpperBound), never "whatever
 *   is there now".
 * - Every filter is a bound parameter; types are anchored regexes from validated patterns.
 * - created_at comes back twice: as a Date for the message, and as microsecond UTC text
 *   for the cursor (a Date would round it to milliseconds and re-read rows).
 * - The payload is read as text and goes to Kafka as is, like the relay's claim.
 */
export const READ_EVENT_PAGE_SQL = `
SELECT e.id::text AS id, e.tenant_id, e.project_id, e.event_key, e.event_type, e.event_version, e.payload::text AS payload_json,
       e.correlation_id, e.causation_id, e.created_at, e.traceparent, e.tracestate,
       to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
FROM eventbus.event_log e
WHERE e.tenant_id = $1
  AND (e.created_at, e.id) > ($2::timestamptz, $3::uuid)
  AND e.created_at < $4::timestamptz
  AND ($5::text[] IS NULL OR e.event_type ~ ANY ($5::text[]))
  AND ($6::text IS NULL OR e.correlation_id = $6::text)
-- Qualified: a bare "id" here would mean the output column (the uuid as text), whose
-- collation order need not be the uuid order the cursor comparison uses.
ORDER BY e.created_at, e.id
LIMIT $7`;

/**
 * The same page when the filter names event ids ($7): the rows are found through the primary
 * key, one probe per id, and only they are filtered and sorted. The CTE holds the one condition
 * only the primary key can serve (with the cursor and the bound, which no index leads with), and
 * MATERIALIZED keeps the tenant, type and correlation conditions out of it: given
 * `tenant_id = $1` as well, the planner can take event_log_tenant_created_idx with `id = ANY` as
 * a filter, and does on a table it has no statistics for yet (right after a bulk load): in a
 * test with 20,000 events of the tenant it read all 20,000 to return 3. The ids are at most
 * @eventbus/replay's MAX_EVENT_IDS, so the CTE stays small. @eventbus/replay's eventPages reads
 * these pages without its PAGE_PLAN_SETTINGS (see there).
 */
export const READ_EVENT_PAGE_BY_IDS_SQL = `
WITH picked AS MATERIALIZED (
  SELECT e.id, e.tenant_id, e.project_id, e.event_key, e.event_type, e.event_version, e.payload::text AS payload_json,
         e.correlation_id, e.causation_id, e.created_at, e.traceparent, e.tracestate
  FROM eventbus.event_log e
  WHERE e.id = ANY ($7::uuid[])
    AND (e.created_at, e.id) > ($2::timestamptz, $3::uuid)
    AND e.created_at < $4::timestamptz
)
SELECT p.id::text AS id, p.tenant_id, p.project_id, p.event_key, p.event_type, p.event_version, p.payload_json,
       p.correlation_id, p.causation_id, p.created_at, p.traceparent, p.tracestate,
       to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
FROM picked p
WHERE p.tenant_id = $1
  AND ($5::text[] IS NULL OR p.event_type ~ ANY ($5::text[]))
  AND ($6::text IS NULL OR p.correlation_id = $6::text)
ORDER BY p.created_at, p.id
LIMIT $8`;

const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** The cursor before the first event of the window. */
export function startCursor(filter: EventLogFilter): EventLogCursor {
  return { createdAt: filter.fromDate ? filter.fromDate.toISOString() : '-infinity', id: NIL_UUID };
}

/**
 * The exclusive bound that --to alone gives (to + 1 µs; Postgres timestamps have microseconds),
 * for callers that pass no computed bound.
 */
export function toDateBound(filter: EventLogFilter): string {
  return filter.toDate ? `${filter.toDate.toISOString().slice(0, -1)}001Z` : 'infinity';
}

/**
 * $1–$6 of READ_EVENT_PAGE_SQL and COUNT_MATCHING_EVENTS_SQL, which share their predicate, and
 * $7, the ids, of their BY_IDS variants.
 */
export function windowParams(filter: EventLogFilter, after: EventLogCursor, before: string): unknown[] {
  const params = [filter.tenantId, after.createdAt, after.id, before, filter.typeRegexes, filter.correlationId];
  return filter.eventIds ? [...params, filter.eventIds] : params;
}

/** `before`: the exclusive upper bound (see replayUpperBound); default: --to alone. */
export async function readEventPage(
  db: pg.Pool | pg.ClientBase,
  filter: EventLogFilter,
  after: EventLogCursor,
  limit: number,
  before = toDateBound(filter),
): Promise<ReplayedRow[]> {
  const sql = filter.eventIds ? READ_EVENT_PAGE_BY_IDS_SQL : READ_EVENT_PAGE_SQL;
  const { rows } = await db.query(sql, [...windowParams(filter, after, before), limit]);
  return rows.map((r) => ({
    ...storedEventFromRow(r),
    cursor: { createdAt: r.cursor_at, id: r.id },
  }));
}
