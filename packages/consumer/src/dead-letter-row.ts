import type pg from 'pg';
import { headersToStrings, HEADER } from '@eventbus/core';
import { decodeDlqHeaders } from './dlq-headers.js';
import type { InboundMessage } from './kafka/consumer-client.js';

/** The dedupe key of a consumer-stage dead letter: the original coordinates, so one failure is one row. */
export function consumerDedupeKey(groupId: string, topic: string, partition: number, offset: string): string {
  return `consumer:${groupId}:${topic}:${partition}:${offset}`;
}

/**
 * Inserts a DLQ record as a dead_letters row, once. Two guards:
 * - the mirror's position in the DLQ topic partition (dlq_mirror_positions, advanced by the
 *   same statement): a record below it was copied before and is skipped, even if its row was
 *   resolved and pruned since, so a mirror whose consumer group lost its offsets and re-reads
 *   the DLQ topics from the beginning brings nothing back. The upsert's WHERE makes the
 *   position only move forward; a concurrent mirror (rebalance) on the same partition waits
 *   for the row lock and then sees the advanced position.
 * - the dedupe key (the original coordinates): the same failure is one row. The one update:
 *   when the row was re-driven and the event failed again (a newer last failure, a new DLQ
 *   record), the row reopens as pending, or that second failure would be invisible.
 * Returns one row when the record was new to the mirror (inserted or reopened or a conflict
 * left as it was), none when the position says it was copied before.
 */
export const MIRROR_DEAD_LETTER_SQL = `
WITH position AS (
  INSERT INTO eventbus.dlq_mirror_positions AS p (topic, partition, next_offset) VALUES ($20, $21, $22::bigint + 1)
  ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
  WHERE p.next_offset < EXCLUDED.next_offset
  RETURNING 1
), mirrored AS (
  INSERT INTO eventbus.dead_letters AS d (dedupe_key, stage, group_id, event_id, tenant_id, event_type, event_key, topic,
    partition, "offset", message_timestamp, message_key, value, headers, error_class, error_message, error_stack,
    attempts, first_failed_at, last_failed_at)
  SELECT $1, 'consumer', $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10::double precision / 1000), $11, $12, $13::jsonb,
    $14, $15, $16, $17, to_timestamp($18::double precision / 1000), to_timestamp($19::double precision / 1000)
  WHERE EXISTS (SELECT 1 FROM position)
  ON CONFLICT (dedupe_key) DO UPDATE SET
    status = 'pending', status_changed_at = now(), headers = EXCLUDED.headers, error_class = EXCLUDED.error_class,
    error_message = EXCLUDED.error_message, error_stack = EXCLUDED.error_stack, attempts = EXCLUDED.attempts,
    first_failed_at = EXCLUDED.first_failed_at, last_failed_at = EXCLUDED.last_failed_at
  WHERE d.status = 'redriven' AND d.last_failed_at < EXCLUDED.last_failed_at
)
SELECT 1 FROM position`;

/** What `mirrorDeadLetter` did with one DLQ message. */
export type MirrorOutcome =
  /** Copied (a new row, a reopened one, or the same failure already there). */
  | 'mirrored'
  /** Below the mirror's position in its DLQ partition: copied before; nothing written. */
  | 'seen_before'
  /** No eventbus DLQ headers (not written by an EventConsumer); nothing written. */
  | 'not_a_dead_letter';

/** Writes one DLQ message to eventbus.dead_letters (see MIRROR_DEAD_LETTER_SQL). */
export async function mirrorDeadLetter(db: pg.Pool | pg.ClientBase, message: InboundMessage): Promise<MirrorOutcome> {
  const headers = headersToStrings(message.headers);
  let info: ReturnType<typeof decodeDlqHeaders>['info'];
  try {
    info = decodeDlqHeaders(headers).info;
  } catch {
    return 'not_a_dead_letter';
  }
  const { origin } = info;
  const { rowCount } = await db.query(MIRROR_DEAD_LETTER_SQL, [
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
    message.topic,
    message.partition,
    message.offset,
  ]);
  return rowCount === 1 ? 'mirrored' : 'seen_before';
}
