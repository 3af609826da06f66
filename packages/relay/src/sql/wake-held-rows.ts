import type pg from 'pg';

/**
 * Makes the outbox rows of these event types that wait for a later try (attempts > 0) new rows
 * again (attempts 0, due now), then notifies the outbox channel without a shard mask, which
 * makes every lane of every relay sweep its shards: a topic that was missing exists, and the
 * rows held back for it follow at once instead of waiting out their due time.
 *
 * Why this shape:
 * - New rows again, not merely due: the claim takes new rows per shard in id order
 *   (`outbox_fresh_idx`, claim-batch.ts), so a tenant's backlog that waited for the topic
 *   goes out in its order, before its rows written since, however many claims it takes. Rows
 *   in backoff are claimed by due time instead, at most half a batch per claim, which would
 *   let the tenant's newest rows overtake the rest of the backlog. The rows never spent
 *   their retries on the missing topic (topic-holds.ts, missingTopic): their count starts over.
 * - Rows of other instances' shards are woken too: an event type routes to the same topic for
 *   every relay of a deployment, and an instance that still holds the topic asks Kafka again
 *   before it holds the woken rows back once more.
 * - One statement with the notification (`pg_notify` once, in the aggregate over the updated
 *   rows): the notification is delivered when the update commits, never before.
 * - Not in the claim transaction: rows locked by another lane's claim in flight are waited
 *   for (a claim's length at most), and waiting with claimed rows locked could deadlock.
 */
export const WAKE_HELD_ROWS_SQL = `
WITH woken AS (
  UPDATE eventbus.outbox o
  SET attempts = 0, next_attempt_at = now()
  FROM eventbus.event_log e
  WHERE o.attempts > 0 AND e.id = o.event_id AND e.event_type = ANY ($1::text[])
  RETURNING o.id
)
SELECT count(*)::int AS woken, pg_notify($2, '') FROM woken`;

/** Wakes the waiting rows of `eventTypes` and every lane listening on `channel` (WAKE_HELD_ROWS_SQL); returns how many rows. */
export async function wakeHeldRows(client: pg.ClientBase, eventTypes: readonly string[], channel: string): Promise<number> {
  if (eventTypes.length === 0) return 0;
  const { rows } = await client.query(WAKE_HELD_ROWS_SQL, [eventTypes, channel]);
  return rows[0].woken;
}
