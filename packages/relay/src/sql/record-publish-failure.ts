import type pg from 'pg';
import { recordRelayDeadLetter } from '@eventbus/dead-letters';
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
 * Moves a row that exhausted its retries to the DLQ table, in the claim transaction that
 * deleted it (the statement is @eventbus/dead-letters' recordRelayDeadLetter).
 */
export async function deadLetterRow(
  client: pg.ClientBase,
  row: ClaimedRow,
  message: { topic: string; headers: Record<string, string> },
  attempts: number,
  error: Error,
): Promise<void> {
  await recordRelayDeadLetter(client, {
    eventId: row.id,
    tenantId: row.tenantId,
    eventType: row.eventType,
    eventKey: row.eventKey,
    topic: message.topic,
    payloadJson: row.payloadJson,
    headers: message.headers,
    error,
    attempts,
    firstFailedAt: row.firstFailedAt,
  });
}
