import type pg from 'pg';

/** One EventLog event: its tenant, type and created_at, and the replay window around it with how many events that window selects. */
export interface EventReplayWindow {
  tenantId: string;
  eventType: string;
  /** The event's created_at as Postgres' microsecond UTC text. */
  createdAt: string;
  /** `--from`: created_at rounded down to the millisecond (the CLI's dates hold milliseconds). */
  from: string;
  /** `--to` (inclusive): created_at rounded up to the millisecond. */
  to: string;
  /** Events of the tenant and type in [from, to]: 1, or more when others share the millisecond (one transaction's events share created_at). */
  eventsInWindow: number;
}

/**
 * One event's tenant, type and created_at, and the `eventbus replay --from/--to` window around
 * it. A dead letter's re-drive reads the tenant and created_at from it when the original record
 * is gone (it then advises `--event-id`, which selects this event alone). The window selects by
 * created_at (the writing transaction's start), not by the Kafka record's timestamp, which is
 * the relay's publish time and trails created_at by the relay's lag; it holds every event of
 * the tenant and type created in that millisecond (all of one transaction's), which
 * eventsInWindow counts.
 *
 * Rounded outwards to milliseconds because `eventbus replay --from/--to` parse into a Date; the
 * count runs the replay's own predicate (tenant, exact type, created_at >= from and
 * < to + 1 µs, as replayUpperBound and toDateBound bound --to) on event_log_tenant_created_idx.
 */
export const FIND_EVENT_REPLAY_WINDOW_SQL = `
WITH e AS (
  SELECT tenant_id, event_type, created_at, date_trunc('milliseconds', created_at) AS from_at
  FROM eventbus.event_log
  WHERE id = $1::uuid
), w AS (
  SELECT e.*, from_at + CASE WHEN created_at = from_at THEN interval '0' ELSE interval '1 millisecond' END AS to_at
  FROM e
)
SELECT w.tenant_id, w.event_type,
       to_char(w.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at,
       to_char(w.from_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS from_at,
       to_char(w.to_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS to_at,
       (SELECT count(*)::int FROM eventbus.event_log o
         WHERE o.tenant_id = w.tenant_id AND o.event_type = w.event_type
           AND o.created_at >= w.from_at AND o.created_at < w.to_at + interval '1 microsecond') AS events_in_window
FROM w`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** undefined when the EventLog has no event with this id (pruned, written through another database, or not a uuid). */
export async function findEventReplayWindow(db: pg.Pool | pg.ClientBase, eventId: string): Promise<EventReplayWindow | undefined> {
  // Not a uuid: it cannot be an event id, and the cast would fail with a driver error.
  if (!UUID.test(eventId)) return undefined;
  const { rows } = await db.query(FIND_EVENT_REPLAY_WINDOW_SQL, [eventId]);
  const r = rows[0];
  return r
    ? { tenantId: r.tenant_id, eventType: r.event_type, createdAt: r.created_at, from: r.from_at, to: r.to_at, eventsInWindow: r.events_in_window }
    : undefined;
}
