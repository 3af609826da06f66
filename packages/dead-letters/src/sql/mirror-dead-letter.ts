import type pg from 'pg';
import { headersToStrings, HEADER, type RawHeaders } from '@eventbus/core';
import { decodeDlqHeaders } from '@eventbus/core';
import type { InboundMessage } from '@eventbus/kafka';

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
 *
 * The record's key, value and headers go in twice: as bytea ($23–$26, byte for byte, what a
 * re-drive sends) and as readable text (message_key, value, headers: UTF-8 with NUL and
 * invalid sequences as U+FFFD), because text and jsonb cannot hold a NUL byte.
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
    attempts, first_failed_at, last_failed_at, message_key_bytes, value_bytes, header_names, header_values)
  SELECT $1, 'consumer', $2, $3, $4, $5, $6, $7, $8, $9, to_timestamp($10::double precision / 1000), $11, $12, $13::jsonb,
    $14, $15, $16, $17, to_timestamp($18::double precision / 1000), to_timestamp($19::double precision / 1000),
    $23::bytea, $24::bytea, $25::bytea[], $26::bytea[]
  WHERE EXISTS (SELECT 1 FROM position)
  ON CONFLICT (dedupe_key) DO UPDATE SET
    status = 'pending', status_changed_at = now(), headers = EXCLUDED.headers, error_class = EXCLUDED.error_class,
    error_message = EXCLUDED.error_message, error_stack = EXCLUDED.error_stack, attempts = EXCLUDED.attempts,
    first_failed_at = EXCLUDED.first_failed_at, last_failed_at = EXCLUDED.last_failed_at,
    header_names = EXCLUDED.header_names, header_values = EXCLUDED.header_values
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
  const text = (value: string | undefined): string | null => (value === undefined ? null : readableText(value));
  const bytes = recordBytes(message);
  // A truncated record (DLQ_HEADER.truncated) stands for a copy too large for the DLQ topic: its
  // empty value is not the event's, so value and value_bytes stay NULL (what `dlq show` and a
  // re-drive read as "not stored"); the headers say how large the refused copy was.
  const truncated = info.refusedCopyBytes !== undefined;
  if (truncated) bytes.value = null;
  // A coordinates-only record (DLQ_HEADER.dropped names `key`) was sent with an empty key in
  // place of one too large for the DLQ topic: stored as no key (NULL), not as an empty one, the
  // same as the value. Identity headers it left out leave their columns (tenant_id, ...) NULL.
  const keyDropped = info.dropped?.some((part) => part.name === 'key') ?? false;
  if (keyDropped) bytes.key = null;
  const { rowCount } = await db.query(MIRROR_DEAD_LETTER_SQL, [
    readableText(consumerDedupeKey(info.groupId, origin.topic, origin.partition, origin.offset)),
    readableText(info.groupId),
    text(headers[HEADER.id]),
    text(headers[HEADER.tenantId]),
    text(headers[HEADER.type]),
    text(headers[HEADER.eventKey]),
    readableText(origin.topic),
    origin.partition,
    origin.offset,
    origin.timestamp,
    message.key === null || keyDropped ? null : readableText(message.key.toString('utf8')),
    message.value === null || truncated ? null : readableText(message.value.toString('utf8')),
    // All headers, the DLQ ones included: a re-drive reads the subscription and retry topic from them.
    JSON.stringify(Object.fromEntries(Object.entries(headers).map(([name, value]) => [readableText(name), readableText(value)]))),
    readableText(info.errorClass),
    readableText(info.errorMessage),
    info.errorStack === undefined ? null : readableText(info.errorStack),
    info.attempts,
    info.firstFailureAt,
    info.lastFailureAt,
    message.topic,
    message.partition,
    message.offset,
    bytes.key,
    bytes.value,
    bytes.headerNames,
    bytes.headerValues,
  ]);
  return rowCount === 1 ? 'mirrored' : 'seen_before';
}

/**
 * Records a DLQ record the mirror gave up storing (see eventbus.dead_letters_unstorable) and
 * moves the mirror's position past it, in one statement: the record is skipped exactly when
 * it is written down. Nothing is written when the position is already past it (seen before).
 */
export const SKIP_UNSTORABLE_SQL = `
WITH position AS (
  INSERT INTO eventbus.dlq_mirror_positions AS p (topic, partition, next_offset) VALUES ($1, $2, $3::bigint + 1)
  ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()
  WHERE p.next_offset < EXCLUDED.next_offset
  RETURNING 1
), skipped AS (
  INSERT INTO eventbus.dead_letters_unstorable AS u (topic, partition, "offset", attempts, error_code, error_message,
    message_key, value, header_names, header_values)
  SELECT $1, $2, $3::bigint, $4, $5, $6, $7::bytea, $8::bytea, $9::bytea[], $10::bytea[]
  WHERE EXISTS (SELECT 1 FROM position)
  -- Only after an operator reset the position (a recreated topic): the newer failure wins.
  ON CONFLICT (topic, partition, "offset") DO UPDATE SET attempts = EXCLUDED.attempts, error_code = EXCLUDED.error_code,
    error_message = EXCLUDED.error_message, message_key = EXCLUDED.message_key, value = EXCLUDED.value,
    header_names = EXCLUDED.header_names, header_values = EXCLUDED.header_values, created_at = now()
)
SELECT 1 FROM position`;

/**
 * Writes a record that could not be stored to dead_letters_unstorable and advances the
 * position past it. Should even that row be refused with its bytes (a record error again),
 * it is written without them: the position and the error are what keep the partition going.
 */
export async function skipUnstorable(
  db: pg.Pool | pg.ClientBase,
  message: InboundMessage,
  failure: { attempts: number; error: unknown },
): Promise<'unstorable' | 'seen_before'> {
  const { code, message: errorMessage } = failure.error as { code?: unknown; message?: unknown };
  const head = [
    message.topic,
    message.partition,
    message.offset,
    failure.attempts,
    typeof code === 'string' ? code : null,
    readableText(String(errorMessage ?? failure.error)).slice(0, 4000),
  ];
  const bytes = recordBytes(message);
  let result: pg.QueryResult;
  try {
    result = await db.query(SKIP_UNSTORABLE_SQL, [...head, bytes.key, bytes.value, bytes.headerNames, bytes.headerValues]);
  } catch (error) {
    if (!isRecordError(error)) throw error;
    result = await db.query(SKIP_UNSTORABLE_SQL, [...head, null, null, null, null]);
  }
  return result.rowCount === 1 ? 'unstorable' : 'seen_before';
}

/**
 * Whether an error belongs to the record rather than to Postgres' availability: SQLSTATE
 * classes 22 (data exception: a value out of a column's range, bytes the encoding refuses),
 * 23 (integrity constraint violation) and 54 (program limit exceeded: a row or index entry
 * too large). Retrying such a record cannot succeed until the schema changes; anything else
 * (a lost connection, a shutdown, a missing table) is the database's and waits, record kept.
 */
export function isRecordError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/** Text Postgres can store: NUL (which text and jsonb refuse) shown as U+FFFD, like invalid UTF-8 already is. */
export function readableText(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the character Postgres text refuses, the one to replace
  return value.includes('\u0000') ? value.replace(/\u0000/g, '\uFFFD') : value;
}

/** A record's key, value and headers as bytea parameters: headers as names and values in record order, repeats kept. */
function recordBytes(message: InboundMessage): { key: Buffer | null; value: Buffer | null; headerNames: Buffer[]; headerValues: Array<Buffer | null> } {
  const headerNames: Buffer[] = [];
  const headerValues: Array<Buffer | null> = [];
  for (const [name, raw] of Object.entries(message.headers ?? ({} as RawHeaders))) {
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      headerNames.push(Buffer.from(name, 'utf8'));
      headerValues.push(value === undefined || value === null ? null : typeof value === 'string' ? Buffer.from(value, 'utf8') : value);
    }
  }
  return { key: message.key, value: message.value, headerNames, headerValues };
}
