import type pg from 'pg';

/**
 * What the `last_error` of a row parked for a missing topic looks like (a LIKE pattern): the
 * relay writes `topic <name> does not exist…` for every row it puts back because of a topic's
 * hold or Kafka's missing-topic refusal (topic-holds.ts, returnOfHeldRow), with attempts > 0.
 * Kafka topic names hold no spaces, and no other error the relay records begins this way.
 */
export const PARKED_FOR_MISSING_TOPIC = 'topic % does not exist%';

/**
 * Makes the outbox rows of these event types parked for a missing topic (attempts > 0,
 * PARKED_FOR_MISSING_TOPIC) new rows again (attempts 0, due now), then notifies the outbox
 * channel without a shard mask, which makes every lane of every relay sweep its shards: a topic
 * that was missing exists, and the rows held back for it follow at once instead of waiting out
 * their due time.
 *
 * Why this shape:
 * - New rows again, not merely due: the claim takes new rows per shard in id order
 *   (`outbox_fresh_idx`, claim-batch.ts), so a tenant's backlog that waited for the topic
 *   goes out in its order, before its rows written since, however many claims it takes. Rows
 *   in backoff are claimed by due time instead, at most half a batch per claim, which would
 *   let the tenant's newest rows overtake the rest of the backlog. The rows never spent
 *   their retries on the missing topic (topic-holds.ts, missingTopic): their count starts over.
 *   Rows of these event types in backoff for their own sake keep their count.
 * - Rows of other instances' shards are woken too: an event type routes to the same topic for
 *   every relay of a deployment, and an instance that still holds the topic asks Kafka again
 *   before it holds the woken rows back once more.
 * - One statement with the notification (`pg_notify` once, in the aggregate over the updated
 *   rows): the notification is delivered when the update commits, never before.
 * - A synchronous commit (`SET LOCAL`, the claim connection's sessions commit asynchronously,
 *   CLAIM_SESSION_SQL): the caller ends the topic's hold once this returns, after which the
 *   tenants' later rows go out at once; a wake a Postgres crash could still take back would
 *   leave the earlier rows parked behind them. One WAL flush per topic that appears.
 * - Not in the claim transaction: rows locked by another lane's claim in flight are waited
 *   for (a claim's length at most), and waiting with claimed rows locked could deadlock.
 */
export const WAKE_HELD_ROWS_SQL = `
WITH woken AS (
  UPDATE eventbus.outbox o
  SET attempts = 0, next_attempt_at = now()
  FROM eventbus.event_log e
  WHERE o.attempts > 0 AND o.last_error LIKE '${PARKED_FOR_MISSING_TOPIC}' AND e.id = o.event_id AND e.event_type = ANY ($1::text[])
  RETURNING o.id
)
SELECT count(*)::int AS woken, pg_notify($2, '') FROM woken`;

/**
 * Wakes the parked rows of `eventTypes` and every lane listening on `channel` (WAKE_HELD_ROWS_SQL)
 * in a transaction of its own that commits synchronously; returns how many rows. Throws when it
 * failed (rolled back).
 */
export async function wakeHeldRows(client: pg.ClientBase, eventTypes: readonly string[], channel: string): Promise<number> {
  if (eventTypes.length === 0) return 0;
  await client.query('BEGIN; SET LOCAL synchronous_commit = on');
  try {
    const { rows } = await client.query(WAKE_HELD_ROWS_SQL, [eventTypes, channel]);
    await client.query('COMMIT');
    return rows[0].woken;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * The event types of the rows parked for a missing topic in `shards` (PARKED_FOR_MISSING_TOPIC).
 * Read when a lane takes shards, not per claim: the partial index of rows in backoff
 * (`outbox_retry_due_idx`, `WHERE attempts > 0`) holds only those, so it reads no row that
 * never failed, and each parked row once (its event's type by primary key).
 */
export const EVENT_TYPES_PARKED_SQL = `
SELECT DISTINCT e.event_type
FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id
WHERE o.attempts > 0 AND o.shard = ANY ($1::smallint[]) AND o.last_error LIKE '${PARKED_FOR_MISSING_TOPIC}'`;

/** The event types parked for a missing topic in `shards` (EVENT_TYPES_PARKED_SQL); nothing for no shards. */
export async function eventTypesParkedForMissingTopic(client: pg.ClientBase, shards: readonly number[]): Promise<string[]> {
  if (shards.length === 0) return [];
  const { rows } = await client.query(EVENT_TYPES_PARKED_SQL, [shards]);
  return rows.map((r) => r.event_type as string);
}
