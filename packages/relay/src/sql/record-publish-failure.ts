import type pg from 'pg';
import { recordRelayDeadLetters } from '@eventbus/dead-letters';
import type { ClaimedRow } from '@eventbus/outbox';

/** A row that exhausted its retries, with what the relay tried to send. */
export interface DeadRow {
  row: ClaimedRow;
  message: { topic: string; headers: Record<string, string> };
  attempts: number;
  error: Error;
}

/**
 * Moves rows that exhausted their retries to the DLQ table, in the claim transaction that
 * deleted them, in one statement (@eventbus/dead-letters' recordRelayDeadLetters).
 */
export async function deadLetterRows(client: pg.ClientBase, rows: readonly DeadRow[]): Promise<void> {
  await recordRelayDeadLetters(
    client,
    rows.map(({ row, message, attempts, error }) => ({
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
    })),
  );
}
