import type pg from 'pg';
import { sqlTableName } from '@eventbus/core';

/**
 * The event-log side of `eventbus audit`: the audit compares in Postgres, in a temporary table
 * of its session, so that ten million event ids never pass through Node's memory. These two
 * statements fill that table from eventbus.event_log; the table belongs to the caller and must
 * have the columns `(id uuid PRIMARY KEY, tenant_id text, event_type text, created_at
 * timestamptz, in_window boolean)`.
 */

/** The audit's window: created_at within [from, to], optionally one tenant and type patterns (anchored regexes). */
export interface EventLogWindow {
  from: Date;
  to: Date;
  tenantId: string | null;
  typeRegexes: string[] | null;
}

/**
 * Every event of the window, one INSERT … SELECT: `event_log_type_created_idx` or
 * `event_log_tenant_created_idx` serve the range. `to` is inclusive, as for replay.
 */
export const COPY_EVENT_LOG_WINDOW_SQL = (target: string) => `
INSERT INTO ${sqlTableName(target)} (id, tenant_id, event_type, created_at, in_window)
SELECT id, tenant_id, event_type, created_at, true
  FROM eventbus.event_log
 WHERE created_at >= $1::timestamptz AND created_at <= $2::timestamptz
   AND ($3::text IS NULL OR tenant_id = $3::text)
   AND ($4::text[] IS NULL OR event_type ~ ANY ($4::text[]))`;

/** Copies the window's events into `target`; returns how many. */
export async function copyEventLogWindow(client: pg.ClientBase, target: string, window: EventLogWindow): Promise<number> {
  const result = await client.query(COPY_EVENT_LOG_WINDOW_SQL(target), [window.from, window.to, window.tenantId, window.typeRegexes]);
  return result.rowCount ?? 0;
}

/**
 * The events whose ids appear in `source.column` (uuid) and are not in `target` yet, marked
 * `in_window = false`: records read from Kafka's margins around the window, and events of a
 * transaction that committed after the window was copied. Ids `target` holds already are
 * dropped first (an anti-join), so event_log is probed only for the few others.
 */
export const COPY_EVENT_LOG_BY_IDS_SQL = (target: string, source: string, column: string) => `
INSERT INTO ${sqlTableName(target)} (id, tenant_id, event_type, created_at, in_window)
SELECT e.id, e.tenant_id, e.event_type, e.created_at, false
  FROM (SELECT DISTINCT ${sqlTableName(column)} AS id FROM ${sqlTableName(source)} WHERE ${sqlTableName(column)} IS NOT NULL) s
  JOIN eventbus.event_log e ON e.id = s.id
 WHERE NOT EXISTS (SELECT 1 FROM ${sqlTableName(target)} t WHERE t.id = s.id)
ON CONFLICT (id) DO NOTHING`;

/** Copies the events `source` names by id that `target` does not hold yet; returns how many. */
export async function copyEventLogByIds(client: pg.ClientBase, target: string, source: { table: string; column: string }): Promise<number> {
  const result = await client.query(COPY_EVENT_LOG_BY_IDS_SQL(target, source.table, source.column));
  return result.rowCount ?? 0;
}
