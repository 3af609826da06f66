import type pg from 'pg';
import type { ClaimedRow } from './claim-batch.js';

/**
 * Puts a row that Kafka refused back into the outbox, inside the claim transaction that
 * deleted it, with its attempt count and the time of its next try. The same id keeps its
 * place in the shard's order. Only row-level refusals come here; a broker outage rolls the
 * whole claim back instead and costs no attempt.
 */
export const RETURN_FOR_RETRY_SQL = `
INSERT INTO eventbus.outbox (id, event_id, shard, attempts, next_attempt_at, first_failed_at, last_error)
OVERRIDING SYSTEM VALUE
VALUES ($1::bigint, $2::uuid, $3, $4, now() + make_interval(secs => $5::double precision / 1000), coalesce($6, now()), $7)`;

export async function returnForRetry(client: pg.ClientBase, row: ClaimedRow, attempts: number, delayMs: number, error: string): Promise<void> {
  await client.query(RETURN_FOR_RETRY_SQL, [row.outboxId, row.id, row.shard, attempts, delayMs, row.firstFailedAt, error.slice(0, 4000)]);
}

/**
 * Moves a row that exhausted its retries to the DLQ table (stage `relay`). Idempotent per
 * event: `relay:{eventId}` is the dedupe key, so a crash between this insert and the
 * commit cannot create two rows.
 */
export const DEAD_LETTER_ROW_SQL = `
INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, event_key, topic,
  message_key, value, headers, error_class, error_message, error_stack, attempts, first_failed_at, last_failed_at)
VALUES ('relay:' || $1, 'relay', $1, $2, $3, $4, $5, $2, $6, $7::jsonb, $8, $9, $10, $11, $12, now())
ON CONFLICT (dedupe_key) DO UPDATE SET
  status = 'pending', attempts = EXCLUDED.attempts, error_message = EXCLUDED.error_message,
  error_stack = EXCLUDED.error_stack, last_failed_at = EXCLUDED.last_failed_at, status_changed_at = now()`;

export async function deadLetterRow(
  client: pg.ClientBase,
  row: ClaimedRow,
  message: { topic: string; headers: Record<string, string> },
  attempts: number,
  error: Error,
): Promise<void> {
  await client.query(DEAD_LETTER_ROW_SQL, [
    row.id,
    row.tenantId,
    row.eventType,
    row.eventKey,
    message.topic,
    row.payloadJson,
    JSON.stringify(message.headers),
    error.name,
    error.message.slice(0, 4000),
    error.stack?.slice(0, 8000) ?? null,
    attempts,
    row.firstFailedAt ?? new Date(),
  ]);
}
