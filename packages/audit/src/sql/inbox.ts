import type pg from 'pg';

/**
 * Read-only probes of the inbox, whose writer is @eventbus/consumer's processOnce. The audit
 * only copies ids out of it into its temporary tables; nothing here writes to it.
 */

/**
 * The groups' handled events (inbox rows) among the window's events. Only handlers that call
 * `context.processOnce` write the inbox, so a group without any row has no evidence of what it
 * handled; `inboxRowCounts` tells the audit which groups have some.
 */
export const COPY_HANDLED_SQL = `
INSERT INTO audit_handled (group_id, event_id)
SELECT i.group_id, i.event_id FROM eventbus.inbox i JOIN audit_log l ON i.event_id = l.id::text
 WHERE i.group_id = ANY ($1::text[])`;

export async function copyHandled(client: pg.ClientBase, groupIds: readonly string[]): Promise<number> {
  if (groupIds.length === 0) return 0;
  const result = await client.query(COPY_HANDLED_SQL, [groupIds]);
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
