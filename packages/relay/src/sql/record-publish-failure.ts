import type pg from 'pg';
import { recordRelayDeadLetter } from '@eventbus/dead-letters';
import type { ClaimedRow } from '@eventbus/outbox';

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
