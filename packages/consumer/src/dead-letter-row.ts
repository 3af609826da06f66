import type pg from 'pg';
import { headersToStrings, HEADER } from '@eventbus/core';
import { decodeDlqHeaders } from './dlq-headers.js';
import type { InboundMessage } from './kafka/consumer-client.js';

/** The dedupe key of a consumer-stage dead letter: the original coordinates, so one failure is one row. */
export function consumerDedupeKey(groupId: string, topic: string, partition: number, offset: string): string {
  return `consumer:${groupId}:${topic}:${partition}:${offset}`;
}

/**
 * Inserts a DLQ record as a dead_letters row. A replay of the same record (mirror restart,
 * rebalance) conflicts on dedupe_key and changes nothing. The one update: when the row was
 * re-driven and the event failed again (a newer last failure), the row reopens as pending,
 * or that second failure would be invisible in the table.
 */
export const MIRROR_DEAD_LETTER_SQL = `
INSERT INTO eventbus.dead_letters AS d (dedupe_key, stage, group_id, event_id, tenant_id, event_type, event_key, topic,
  partition, "offset", message_timestamp, message_key, value, headers, error_class, error_message, error_stack,
  attempts, first_failed_at, last_failed_at)
VALUES ($1, 'consumer', $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10::double precision / 1000), $11, $12, $13::jsonb,
  $14, $15, $16, $17, to_timestamp($18::double precision / 1000), to_timestamp($19::double precision / 1000))
ON CONFLICT (dedupe_key) DO UPDATE SET
  status = 'pending', status_changed_at = now(), headers = EXCLUDED.headers, error_class = EXCLUDED.error_class,
  error_message = EXCLUDED.error_message, error_stack = EXCLUDED.error_stack, attempts = EXCLUDED.attempts,
  first_failed_at = EXCLUDED.first_failed_at, last_failed_at = EXCLUDED.last_failed_at
WHERE d.status = 'redriven' AND d.last_failed_at < EXCLUDED.last_failed_at`;

/**
 * Writes one DLQ message to eventbus.dead_letters. Returns false (and writes nothing) for a
 * message without DLQ headers, which did not come from an EventConsumer.
 */
export async function mirrorDeadLetter(db: pg.Pool | pg.ClientBase, message: InboundMessage): Promise<boolean> {
  const headers = headersToStrings(message.headers);
  let info: ReturnType<typeof decodeDlqHeaders>['info'];
  try {
    info = decodeDlqHeaders(headers).info;
  } catch {
    return false;
  }
  const { origin } = info;
  await db.query(MIRROR_DEAD_LETTER_SQL, [
    consumerDedupeKey(info.groupId, origin.topic, origin.partition, origin.offset),
    info.groupId,
    headers[HEADER.id] ?? null,
    headers[HEADER.tenantId] ?? null,
    headers[HEADER.type] ?? null,
    headers[HEADER.eventKey] ?? null,
    origin.topic,
    origin.partition,
    origin.offset,
    origin.timestamp,
    message.key?.toString('utf8') ?? null,
    // Postgres text cannot hold NUL bytes; garbage values keep the rest.
    message.value?.toString('utf8').replace(/\u0000/g, '') ?? null,
    // All headers, the DLQ ones included: a re-drive reads the subscription and retry topic from them.
    JSON.stringify(headers).replace(/\\u0000/g, ''),
    info.errorClass,
    info.errorMessage,
    info.errorStack ?? null,
    info.attempts,
    info.firstFailureAt,
    info.lastFailureAt,
  ]);
  return true;
}
