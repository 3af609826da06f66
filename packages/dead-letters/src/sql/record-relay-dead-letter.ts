import type pg from 'pg';

/** An event the relay gave up publishing, as `recordRelayDeadLetter` stores it. */
export interface RelayDeadLetter {
  eventId: string;
  tenantId: string;
  eventType: string;
  eventKey: string;
  /** The topic the event was routed to. */
  topic: string;
  /** The event's payload as JSON text (stored as the row's value). */
  payloadJson: string;
  /** The Kafka headers the relay sent. */
  headers: Record<string, string>;
  error: Error;
  attempts: number;
  /** When the first try failed; now when unknown. */
  firstFailedAt: Date | null;
}

/**
 * Moves a row that exhausted its retries to the DLQ table (stage `relay`). Idempotent per
 * event: `relay:{eventId}` is the dedupe key, so a crash between this insert and the
 * commit cannot create two rows.
 */
export const RECORD_RELAY_DEAD_LETTER_SQL = `
INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, event_key, topic,
  message_key, value, headers, error_class, error_message, error_stack, attempts, first_failed_at, last_failed_at)
VALUES ('relay:' || $1, 'relay', $1, $2, $3, $4, $5, $2, $6, $7::jsonb, $8, $9, $10, $11, $12, now())
ON CONFLICT (dedupe_key) DO UPDATE SET
  status = 'pending', attempts = EXCLUDED.attempts, error_message = EXCLUDED.error_message,
  error_stack = EXCLUDED.error_stack, last_failed_at = EXCLUDED.last_failed_at, status_changed_at = now()`;

/**
 * Writes a relay-stage dead letter through the caller's client, so it commits with the
 * caller's transaction (the relay's claim, which deleted the outbox row).
 */
export async function recordRelayDeadLetter(client: pg.ClientBase, deadLetter: RelayDeadLetter): Promise<void> {
  const { error } = deadLetter;
  await client.query(RECORD_RELAY_DEAD_LETTER_SQL, [
    deadLetter.eventId,
    deadLetter.tenantId,
    deadLetter.eventType,
    deadLetter.eventKey,
    deadLetter.topic,
    deadLetter.payloadJson,
    JSON.stringify(deadLetter.headers),
    error.name,
    error.message.slice(0, 4000),
    error.stack?.slice(0, 8000) ?? null,
    deadLetter.attempts,
    deadLetter.firstFailedAt ?? new Date(),
  ]);
}
