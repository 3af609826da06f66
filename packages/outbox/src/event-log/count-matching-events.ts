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

/** `before`: the replay's exclusive upper bound (see replayUpperBound); default: --to alone. */
export async function countMatchingEvents(
  db: pg.Pool | pg.ClientBase,
  filter: EventLogFilter,
  after: EventLogCursor,
  before = toDateBound(filter),
): Promise<number> {
  const { rows } = await db.query(COUNT_MATCHING_EVENTS_SQL, windowParams(filter, after, before));
  return Number(rows[0].n);
}
