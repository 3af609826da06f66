import type pg from 'pg';
import type { ClaimedRow } from './claim-batch.js';

/** A refused row going back to the outbox: its attempts so far, when to try again, why it failed. */
export interface RetryRow {
  row: ClaimedRow;
  attempts: number;
  delayMs: number;
  error: string;
}

/**
 * Puts rows that Kafka refused back into the outbox, inside the claim transaction that
 * deleted them, each with its attempt count and the time of its next try. The same ids keep
 * their place in the shard's order. Only row-level refusals come here; a broker outage rolls
 * the whole claim back instead and costs no attempt.
 *
 * One statement for the whole batch (arrays through unnest): a tenant whose every row is
 * refused sends hundreds of them per second through here, and one INSERT per row, each a
 * round trip inside the claim transaction, took ~3 ms a row on the isolation bench
 * (`pnpm bench --only isolation`), the largest part of every batch's time, which the
 * other tenants of the batch waited for.
 */
export const RETURN_FOR_RETRY_SQL = `
INSERT INTO eventbus.outbox (id, event_id, shard, attempts, next_attempt_at, first_failed_at, last_error)
OVERRIDING SYSTEM VALUE
SELECT r.id, r.event_id, r.shard, r.attempts, now() + make_interval(secs => r.delay_ms / 1000), coalesce(r.first_failed_at, now()), r.last_error
FROM unnest($1::bigint[], $2::uuid[], $3::smallint[], $4::integer[], $5::double precision[], $6::timestamptz[], $7::text[])
  AS r(id, event_id, shard, attempts, delay_ms, first_failed_at, last_error)`;

/** Returns `rows` to the outbox in one statement (RETURN_FOR_RETRY_SQL); nothing for an empty list. */
export async function returnForRetry(client: pg.ClientBase, rows: readonly RetryRow[]): Promise<void> {
  if (rows.length === 0) return;
  await client.query(RETURN_FOR_RETRY_SQL, [
    rows.map((r) => r.row.outboxId),
    rows.map((r) => r.row.id),
    rows.map((r) => r.row.shard),
    rows.map((r) => r.attempts),
    rows.map((r) => r.delayMs),
    rows.map((r) => r.row.firstFailedAt),
    rows.map((r) => r.error.slice(0, 4000)),
  ]);
}
