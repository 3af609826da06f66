import type pg from 'pg';

/**
 * Which of these ids are events of the tenant: what a replay by event id checks before it sends
 * anything. Scoped to the tenant like FIND_EVENT_CURSOR_SQL, so another tenant's event id is not
 * found rather than read. Through the primary key only, like READ_EVENT_PAGE_BY_IDS_SQL: with
 * `tenant_id = $1` beside `id = ANY` the planner can scan the tenant's whole range of
 * event_log_tenant_created_idx (id is its last column), and does on a table without statistics.
 */
export const FIND_EVENT_IDS_SQL = `
WITH picked AS MATERIALIZED (
  SELECT id, tenant_id FROM eventbus.event_log WHERE id = ANY ($2::uuid[])
)
SELECT id::text AS id FROM picked WHERE tenant_id = $1`;

/** The ids (lowercase uuids, as validated by the caller) that the tenant's EventLog holds, in no particular order. */
export async function findEventIds(db: pg.Pool | pg.ClientBase, tenantId: string, eventIds: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(FIND_EVENT_IDS_SQL, [tenantId, eventIds]);
  return rows.map((r) => r.id);
}
