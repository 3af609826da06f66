import type pg from 'pg';

/** Dead letters dead-lettered before the cutoff. */
export interface OldDeadLetterCounts {
  /** Re-driven or discarded before the cutoff: the prune may delete them. */
  prunable: number;
  /** Still pending: never deleted; someone has to re-drive or discard them first. */
  pending: number;
}

/**
 * When a row was resolved: status_changed_at, which `dlq retry|discard` always set. A
 * resolved row without it was changed by hand; when it was dead-lettered (created_at) is
 * the best bound left, and without one such rows would be kept forever. status_changed_at
 * is never before created_at, so `resolved before the cutoff` implies `created_at < cutoff`,
 * which is what lets both statements range-scan dead_letters_status_created_idx
 * (status, created_at) instead of reading the table.
 */
const RESOLVED_BEFORE_CUTOFF = `status IN ('redriven', 'discarded') AND coalesce(status_changed_at, created_at) < $1`;

/**
 * Counts once, before deleting (for --dry-run, the confirmation and the progress total).
 * `status IN (all three)` instead of no status condition: the same index then serves the
 * count as three range scans on created_at.
 */
export const COUNT_OLD_DEAD_LETTERS_SQL = `
SELECT count(*) FILTER (WHERE ${RESOLVED_BEFORE_CUTOFF})::bigint AS prunable,
       count(*) FILTER (WHERE status = 'pending')::bigint AS pending
FROM eventbus.dead_letters
WHERE status IN ('pending', 'redriven', 'discarded') AND created_at < $1
  AND ($2::text IS NULL OR tenant_id = $2)`;

export async function countOldDeadLetters(db: pg.Pool, cutoff: Date, tenantId: string | null): Promise<OldDeadLetterCounts> {
  const { rows } = await db.query(COUNT_OLD_DEAD_LETTERS_SQL, [cutoff, tenantId]);
  return { prunable: Number(rows[0].prunable), pending: Number(rows[0].pending) };
}

/**
 * Deletes up to `$3` resolved dead letters; one statement is one short transaction. No
 * ORDER BY: which resolved rows go first does not matter, and without a sort the scan stops
 * at the n-th match.
 *
 * The outer WHERE repeats the condition on purpose. A resolved row can become pending again
 * (the relay dead-letters the same event anew: its upsert sets status = 'pending'). If that
 * update commits while this DELETE waits for the row's lock, Postgres re-checks only the
 * outer WHERE against the new row version, not the subquery that picked the id: without
 * the repeat a row that just became pending would be deleted.
 */
export const DELETE_OLD_DEAD_LETTERS_SQL = `
DELETE FROM eventbus.dead_letters
WHERE id IN (
  SELECT id FROM eventbus.dead_letters
  WHERE ${RESOLVED_BEFORE_CUTOFF} AND created_at < $1
    AND ($2::text IS NULL OR tenant_id = $2)
  LIMIT $3
)
  AND ${RESOLVED_BEFORE_CUTOFF}`;

/** Runs one batch; returns the rows deleted. */
export async function deleteOldDeadLetters(db: pg.Pool, cutoff: Date, tenantId: string | null, limit: number): Promise<number> {
  const { rowCount } = await db.query(DELETE_OLD_DEAD_LETTERS_SQL, [cutoff, tenantId, limit]);
  return rowCount ?? 0;
}

/**
 * A condition for the EventLog's prune (`e` is the eventbus.event_log row; the caller passes
 * it to @eventbus/outbox's countOldEvents and deleteOldEvents): the event has a pending
 * relay-stage dead letter. Those rows keep no payload of their own; `dlq retry` puts
 * the event back in the outbox and the relay reads it from the EventLog, so such an event
 * must stay. Probed through dead_letters_dedupe_key_uq: the relay writes relay rows with the
 * key `relay:{event id}` (record-relay-dead-letter.ts).
 */
export const PENDING_RELAY_DEAD_LETTER_OF_EVENT = `EXISTS (SELECT 1 FROM eventbus.dead_letters d WHERE d.dedupe_key = 'relay:' || e.id::text AND d.status = 'pending')`;
