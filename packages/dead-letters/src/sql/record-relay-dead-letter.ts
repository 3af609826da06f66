import type pg from 'pg';

/** An event the relay gave up publishing, as `recordRelayDeadLetters` stores it. */
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
 * Moves rows that exhausted their retries to the DLQ table (stage `relay`). Idempotent per
 * event: `relay:{eventId}` is the dedupe key, so a crash between this insert and the
 * commit cannot create two rows.
 *
 * One statement for all the dead letters of a claim (arrays through unnest), because it runs
 * inside the relay's claim transaction: a tenant whose every row is refused dead-letters
 * hundreds per second, and a round trip per row there is time the other tenants of the batch
 * wait for. A batch never holds the same event twice (each outbox row is claimed once), which
 * ON CONFLICT DO UPDATE requires of one statement.
 */
export const RECORD_RELAY_DEAD_LETTERS_SQL = `
INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, event_key, topic,
  message_key, value, headers, error_class, error_message, error_stack, attempts, first_failed_at, last_failed_at)
SELECT 'relay:' || d.event_id, 'relay', d.event_id, d.tenant_id, d.event_type, d.event_key, d.topic,
  d.tenant_id, d.value, d.headers::jsonb, d.error_class, d.error_message, d.error_stack, d.attempts, coalesce(d.first_failed_at, now()), now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
  $10::text[], $11::integer[], $12::timestamptz[])
  AS d(event_id, tenant_id, event_type, event_key, topic, value, headers, error_class, error_message, error_stack, attempts, first_failed_at)
ON CONFLICT (dedupe_key) DO UPDATE SET
  status = 'pending', attempts = EXCLUDED.attempts, error_message = EXCLUDED.error_message,
  error_stack = EXCLUDED.error_stack, last_failed_at = EXCLUDED.last_failed_at, status_changed_at = now()`;

/**
 * Writes relay-stage dead letters through the caller's client, so they commit with the
 * caller's transaction (the relay's claim, which deleted the outbox rows).
 */
export async function recordRelayDeadLetters(client: pg.ClientBase, deadLetters: readonly RelayDeadLetter[]): Promise<void> {
  if (deadLetters.length === 0) return;
  await client.query(RECORD_RELAY_DEAD_LETTERS_SQL, [
    deadLetters.map((d) => d.eventId),
    deadLetters.map((d) => d.tenantId),
    deadLetters.map((d) => d.eventType),
    deadLetters.map((d) => d.eventKey),
    deadLetters.map((d) => d.topic),
    deadLetters.map((d) => d.payloadJson),
    deadLetters.map((d) => JSON.stringify(d.headers)),
    deadLetters.map((d) => d.error.name),
    deadLetters.map((d) => d.error.message.slice(0, 4000)),
    deadLetters.map((d) => d.error.stack?.slice(0, 8000) ?? null),
    deadLetters.map((d) => d.attempts),
    // A row dead-lettered at its first failure has none yet: Postgres' now() then, the clock of
    // last_failed_at, so that first_failed_at is never after it.
    deadLetters.map((d) => d.firstFailedAt),
  ]);
}
