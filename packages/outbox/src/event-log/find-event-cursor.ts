import type pg from 'pg';
import type { EventLogCursor } from './read-event-page.js';

/**
 * The position of one of the tenant's events, for `--after <event id>`. Scoped to the
 * tenant: another tenant's event id finds nothing rather than a position in a log the
 * replay must never read.
 */
export const FIND_EVENT_CURSOR_SQL = `
SELECT id::text AS id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
FROM eventbus.event_log
WHERE id = $2::uuid AND tenant_id = $1`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function findEventCursor(db: pg.Pool | pg.ClientBase, tenantId: string, eventId: string): Promise<EventLogCursor | undefined> {
  // Not a uuid: it cannot be an event id, and the cast would fail with a driver error.
  if (!UUID.test(eventId)) return undefined;
  const { rows } = await db.query(FIND_EVENT_CURSOR_SQL, [tenantId, eventId]);
  return rows[0] ? { createdAt: rows[0].cursor_at, id: rows[0].id } : undefined;
}
