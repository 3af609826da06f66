import type pg from 'pg';
import { decodeDropped, DLQ_HEADER, type DroppedPart } from '@eventbus/core';
import { EVENT_LOG_PAYLOAD_SQL } from '@eventbus/outbox';

/** Filters of `dlq list` and `dlq retry|discard --all`. */
export interface DeadLetterFilter {
  tenantId?: string;
  groupId?: string;
  /** Anchored regexes from event type patterns (see @eventbus/replay's patternToRegex). */
  typeRegexes?: string[];
  /** null = every status. */
  status: 'pending' | 'redriven' | 'discarded' | null;
  stage?: 'relay' | 'consumer';
  /** Dead-lettered (created_at) at or after; with `until`, a half-open range [since, until). */
  since?: Date;
  /** Dead-lettered (created_at) before. */
  until?: Date;
  limit: number;
}

/** One line of `dlq list`. */
export interface DeadLetterSummary {
  id: string;
  stage: 'relay' | 'consumer';
  status: string;
  groupId: string | null;
  tenantId: string | null;
  eventType: string | null;
  eventId: string | null;
  attempts: number;
  errorClass: string;
  errorMessage: string;
  lastFailedAt: Date;
  createdAt: Date;
  /**
   * Set when the row stands for a DLQ copy Kafka refused as too large (DLQ header
   * `eventbus-dlq-truncated`): the size in bytes of that copy. The row holds no value; the
   * original is on its topic at `topic`/`partition`/`offset` (see dlq show).
   */
  refusedCopyBytes: number | null;
}

/**
 * Lists dead letters, newest first. Every filter is a bound parameter and an absent one is
 * NULL (`$n IS NULL OR …`): the table is small next to the EventLog, and the status index
 * (status, created_at) serves the common `status = 'pending'` listing.
 */
export const LIST_DEAD_LETTERS_SQL = `
SELECT id::text, stage, status, group_id, tenant_id, event_type, event_id, attempts, error_class, error_message, last_failed_at, created_at,
       headers->>'${DLQ_HEADER.truncated}' AS refused_copy_bytes
FROM eventbus.dead_letters
WHERE ($1::text IS NULL OR status = $1)
  AND ($2::text IS NULL OR tenant_id = $2)
  AND ($3::text IS NULL OR group_id = $3)
  AND ($4::text[] IS NULL OR event_type ~ ANY ($4::text[]))
  AND ($5::text IS NULL OR stage = $5)
  AND ($6::timestamptz IS NULL OR created_at >= $6)
  AND ($7::timestamptz IS NULL OR created_at < $7)
ORDER BY created_at DESC, id DESC
LIMIT $8`;

export async function listDeadLetters(db: pg.Pool, filter: DeadLetterFilter): Promise<DeadLetterSummary[]> {
  const { rows } = await db.query(LIST_DEAD_LETTERS_SQL, [
    filter.status,
    filter.tenantId ?? null,
    filter.groupId ?? null,
    filter.typeRegexes && filter.typeRegexes.length > 0 ? filter.typeRegexes : null,
    filter.stage ?? null,
    filter.since?.toISOString() ?? null,
    filter.until?.toISOString() ?? null,
    filter.limit,
  ]);
  return rows.map(summaryFromRow);
}

function summaryFromRow(r: pg.QueryResultRow): DeadLetterSummary {
  return {
    id: r.id,
    stage: r.stage,
    status: r.status,
    groupId: r.group_id,
    tenantId: r.tenant_id,
    eventType: r.event_type,
    eventId: r.event_id,
    attempts: r.attempts,
    errorClass: r.error_class,
    errorMessage: r.error_message,
    lastFailedAt: r.last_failed_at,
    createdAt: r.created_at,
    refusedCopyBytes: r.refused_copy_bytes === null || r.refused_copy_bytes === undefined ? null : Number(r.refused_copy_bytes),
  };
}

/**
 * The DLQ record's key, value and headers byte for byte (migration 0004's bytea columns):
 * headers in record order, repeats kept, a null value as null.
 */
export interface DeadLetterBytes {
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<{ name: Buffer; value: Buffer | null }>;
}

/** Everything about one dead letter, for `dlq show`. */
export interface DeadLetterDetail extends DeadLetterSummary {
  dedupeKey: string;
  eventKey: string | null;
  topic: string | null;
  partition: number | null;
  offset: string | null;
  messageTimestamp: Date | null;
  /** Readable text copies (NUL and invalid UTF-8 as U+FFFD): what rows from before migration 0004 and relay rows have. */
  messageKey: string | null;
  value: string | null;
  headers: Record<string, string>;
  /** The record's bytes; null for relay rows and for rows mirrored before migration 0004. */
  bytes: DeadLetterBytes | null;
  errorStack: string | null;
  firstFailedAt: Date;
  statusChangedAt: Date | null;
  /** Relay-stage rows carry no value: the payload is read from the EventLog. */
  eventLogPayload: unknown;
  /**
   * What a coordinates-only DLQ record left out (DLQ header `eventbus-dlq-dropped`): `key` and
   * header names with their sizes in bytes. Empty on other rows. A left-out key is a NULL key; a
   * left-out `ce_tenantid` a NULL tenant; the original on its topic holds them.
   */
  dropped: DroppedPart[];
}

export const SHOW_DEAD_LETTER_SQL = `
SELECT d.id::text, d.dedupe_key, d.stage, d.status, d.group_id, d.tenant_id, d.event_type, d.event_id, d.event_key, d.topic,
       d.partition, d."offset", d.message_timestamp, d.message_key, d.value, d.headers, d.error_class, d.error_message,
       d.error_stack, d.attempts, d.first_failed_at, d.last_failed_at, d.status_changed_at, d.created_at,
       d.headers->>'${DLQ_HEADER.truncated}' AS refused_copy_bytes,
       d.message_key_bytes, d.value_bytes, d.header_names, d.header_values,
       e.payload AS event_log_payload
FROM eventbus.dead_letters d
-- Relay rows keep no value of their own: show the EventLog's payload. The CASE keeps a
-- malformed event_id (consumer rows hold whatever the message said) from failing the cast.
LEFT JOIN LATERAL (
  ${EVENT_LOG_PAYLOAD_SQL(`CASE WHEN d.stage = 'relay' AND d.event_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN d.event_id::uuid END`)}
) e ON true
WHERE d.id = $1`;

export async function showDeadLetter(db: pg.Pool, id: string): Promise<DeadLetterDetail | undefined> {
  const { rows } = await db.query(SHOW_DEAD_LETTER_SQL, [id]);
  const r = rows[0];
  if (!r) return undefined;
  return {
    ...summaryFromRow(r),
    dedupeKey: r.dedupe_key,
    eventKey: r.event_key,
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    messageTimestamp: r.message_timestamp,
    messageKey: r.message_key,
    value: r.value,
    headers: r.headers,
    bytes: bytesFromRow(r),
    errorStack: r.error_stack,
    firstFailedAt: r.first_failed_at,
    statusChangedAt: r.status_changed_at,
    eventLogPayload: r.event_log_payload,
    dropped: decodeDropped((r.headers as Record<string, string> | null)?.[DLQ_HEADER.dropped] ?? ''),
  };
}

/** The bytea columns, when the mirror wrote them (header_names is never NULL then: an empty array at least). */
function bytesFromRow(r: pg.QueryResultRow): DeadLetterBytes | null {
  const names = r.header_names as Buffer[] | null;
  const values = r.header_values as Array<Buffer | null> | null;
  if (names === null || values === null) return null;
  return {
    key: r.message_key_bytes,
    value: r.value_bytes,
    headers: names.map((name, i) => ({ name, value: values[i] ?? null })),
  };
}

/**
 * How many of the given events have a dead letter of the consumer group (any status). An
 * event that failed again after a duplicate delivery (at-least-once) has a second row with
 * its own origin offset: counted once. Served by dead_letters_group_idx (group_id, status).
 */
export const COUNT_DEAD_LETTERED_EVENTS_SQL = `SELECT count(DISTINCT event_id)::int AS n FROM eventbus.dead_letters WHERE group_id = $1 AND event_id = ANY($2::text[])`;

export async function countDeadLetteredEvents(db: pg.Pool, groupId: string, eventIds: readonly string[]): Promise<number> {
  const { rows } = await db.query(COUNT_DEAD_LETTERED_EVENTS_SQL, [groupId, [...eventIds]]);
  return Number(rows[0].n);
}
