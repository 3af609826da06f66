import type pg from 'pg';
import { sqlTableName } from '@eventbus/core';

/**
 * The inbox side of `eventbus audit`: read-only copies of what consumer groups handled (the
 * inbox rows `processOnce` writes) into the audit's temporary tables, so that the comparison
 * runs in Postgres. The tables belong to the caller: `events` has an `id uuid` column (the
 * window's events), `target` the columns `(group_id text, event_id text)`.
 */

/**
 * The groups' handled events among the window's events. Only handlers that call
 * `context.processOnce` write the inbox, so a group without any row has no evidence of what it
 * handled; `groupsWithInbox` tells the audit which groups have some. The inbox has a row per
 * subscription that ran its effect; an event counts as handled by its group once any did, so
 * one row per (group, event) is copied.
 */
export const COPY_HANDLED_EVENTS_SQL = (target: string, events: string) => `
INSERT INTO ${sqlTableName(target)} (group_id, event_id)
SELECT DISTINCT i.group_id, i.event_id FROM eventbus.inbox i JOIN ${sqlTableName(events)} l ON i.event_id = l.id::text
 WHERE i.group_id = ANY ($1::text[])`;

/** Copies the groups' handled events of `events` into `target`, one row per (group, event); returns how many. */
export async function copyHandledEvents(client: pg.ClientBase, tables: { target: string; events: string }, groupIds: readonly string[]): Promise<number> {
  if (groupIds.length === 0) return 0;
  const result = await client.query(COPY_HANDLED_EVENTS_SQL(tables.target, tables.events), [groupIds]);
  return result.rowCount ?? 0;
}

/** Whether each group has any inbox row at all (one index probe each on the primary key). */
export const GROUPS_WITH_INBOX_SQL = `
SELECT g AS group_id FROM unnest($1::text[]) g
 WHERE EXISTS (SELECT 1 FROM eventbus.inbox i WHERE i.group_id = g)`;

export async function groupsWithInbox(client: pg.ClientBase, groupIds: readonly string[]): Promise<Set<string>> {
  if (groupIds.length === 0) return new Set();
  const { rows } = await client.query(GROUPS_WITH_INBOX_SQL, [groupIds]);
  return new Set(rows.map((r) => r.group_id as string));
}
