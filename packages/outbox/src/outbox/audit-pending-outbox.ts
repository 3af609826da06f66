import type pg from 'pg';
import { sqlTableName } from '@eventbus/core';

/**
 * The outbox side of `eventbus audit`: the window's events still in the outbox are not on
 * Kafka yet, and not missing. Copied into the audit's temporary table `target` (one column,
 * `event_id uuid`, unique), joined with `window`, its copy of the window's events (`id uuid`,
 * see audit-event-log.ts).
 */
export const COPY_PENDING_OUTBOX_SQL = (target: string, window: string) => `
INSERT INTO ${sqlTableName(target)} (event_id)
SELECT o.event_id FROM eventbus.outbox o JOIN ${sqlTableName(window)} l ON l.id = o.event_id
ON CONFLICT DO NOTHING`;

/** Copies the pending outbox rows of the events in `window` into `target`; returns how many. */
export async function copyPendingOutbox(client: pg.ClientBase, target: string, window: string): Promise<number> {
  const result = await client.query(COPY_PENDING_OUTBOX_SQL(target, window));
  return result.rowCount ?? 0;
}
