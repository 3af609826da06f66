import type pg from 'pg';
import { type EventLogCursor, type EventLogFilter, toDateBound, windowParams } from './read-event-page.js';

/**
 * How many events a replay will read after `after`: the total for a progress bar's ETA and
 * for `--dry-run`. Same predicate as READ_EVENT_PAGE_SQL, so the two agree.
 */
export const COUNT_MATCHING_EVENTS_SQL = `
SELECT count(*)::bigint AS n
FROM eventbus.event_log
WHERE tenant_id = $1
  AND (created_at, id) > ($2::timestamptz, $3::uuid)
  AND created_at < $4::timestamptz
  AND ($5::text[] IS NULL OR event_type ~ ANY ($5::text[]))
  AND ($6::text IS NULL OR correlation_id = $6::text)`;

/** The count when the filter names event ids ($7): through the primary key, shaped as READ_EVENT_PAGE_BY_IDS_SQL is and for its reasons. */
export const COUNT_MATCHING_EVENTS_BY_IDS_SQL = `
WITH picked AS MATERIALIZED (
  SELECT tenant_id, event_type, correlation_id
  FROM eventbus.event_log
  WHERE id = ANY ($7::uuid[])
    AND (created_at, id) > ($2::timestamptz, $3::uuid)
    AND created_at < $4::timestamptz
)
SELECT count(*)::bigint AS n
FROM picked
WHERE tenant_id = $1
  AND ($5::text[] IS NULL OR event_type ~ ANY ($5::text[]))
  AND ($6::text IS NULL OR correlation_id = $6::text)`;

/** `before`: the replay's exclusive upper bound (see replayUpperBound); default: --to alone. */
export async function countMatchingEvents(
  db: pg.Pool | pg.ClientBase,
  filter: EventLogFilter,
  after: EventLogCursor,
  before = toDateBound(filter),
): Promise<number> {
  const sql = filter.eventIds ? COUNT_MATCHING_EVENTS_BY_IDS_SQL : COUNT_MATCHING_EVENTS_SQL;
  const { rows } = await db.query(sql, windowParams(filter, after, before));
  return Number(rows[0].n);
}
