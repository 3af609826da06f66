import type pg from 'pg';
import { errorMessage, EventBusError, HEADER, invalidConfig, isEventBusError, shellQuote, TopicRouter, type TopicRoutingOptions } from '@eventbus/core';
import type { MessagePublisher, StoredRecord } from '@eventbus/kafka';
import { findEventReplayWindow, requeueEvent } from '@eventbus/outbox';
import { inTransaction } from '@eventbus/schema/transaction';
import { DLQ_HEADER } from '@eventbus/core';
import { withoutHeaders } from '@eventbus/core';
import { encodeRetryHeaders } from '@eventbus/core';
import { retryTopicFor } from '@eventbus/core';

/** What a re-drive or discard did; `message` says it in words (for a CLI or an admin UI). */
export interface DeadLetterActionResult {
  id: string;
  outcome: 'redriven' | 'discarded' | 'already_redriven' | 'already_discarded' | 'not_found';
  stage?: 'relay' | 'consumer';
  message: string;
}

interface DeadLetterRow {
  id: string;
  stage: 'relay' | 'consumer';
  status: 'pending' | 'redriven' | 'discarded';
  group_id: string | null;
  event_id: string | null;
  event_type: string | null;
  tenant_id: string | null;
  topic: string | null;
  partition: number | null;
  offset: string | null;
  message_timestamp: Date | null;
  message_key: string | null;
  value: string | null;
  headers: Record<string, string>;
  /** The record's bytes (migration 0004); NULL in older rows, which are re-driven from the text columns. */
  message_key_bytes: Buffer | null;
  value_bytes: Buffer | null;
  header_names: Buffer[] | null;
  header_values: Array<Buffer | null> | null;
}

/**
 * Sends a pending dead letter back for processing and marks it `redriven`, under a row lock
 * so two admins cannot send it twice; a row already re-driven (or discarded) is left alone
 * and the result says so.
 * - consumer stage: published to the group's retry topic, due now, attempt reset to 1,
 *   with the original key, value, headers and coordinates (their bytes as the DLQ record
 *   held them; rows mirrored before migration 0004 only have text); only the subscription that gave
 *   up runs again. A row whose DLQ record holds no value (`eventbus-dlq-truncated`) sends the
 *   original record instead, read from its topic at the row's coordinates with
 *   `publisher.readRecordAt` (bounded; before the row is locked) once its ce_id and timestamp
 *   match the row's: refused with ORIGINAL_NOT_RETAINED or ORIGINAL_MISMATCH otherwise, the row
 *   left pending. A missing retry topic is created first as the consumer creates it
 *   (MessagePublisher.ensureCopyTopics), not at the broker's default size. The publish happens
 *   before the commit: if the commit then fails the row stays pending and a second re-drive
 *   would send again (at-least-once, like everything else).
 * - relay stage: a new outbox row for the event, in the same transaction as the status change.
 */
export async function redriveDeadLetter(
  pool: pg.Pool,
  publisher: MessagePublisher,
  id: number | string,
  options: { routing?: TopicRoutingOptions } = {},
): Promise<DeadLetterActionResult> {
  const key = deadLetterId(id);
  // A row without its value: the original is read from Kafka before the row is locked. Read
  // under the lock, the transaction stayed open for the whole read (30 s and more against a
  // slow broker): a pooler's or Postgres' idle-in-transaction timeout could end it after the
  // publish, leaving the row pending for a second re-drive, and the console's pool lost a
  // connection per re-drive meanwhile. The read has no side effects, and the coordinates it
  // reads never change on a row; the row is locked and checked again before anything is sent.
  const unlocked = await readRow(pool, key);
  const original = unlocked && unlocked.status === 'pending' && withoutValue(unlocked) ? await originalFromTopic(unlocked, publisher, pool) : undefined;
  return inTransaction(pool, async (client) => {
    const row = await lockRow(client, key);
    if (!row) return { id: key, outcome: 'not_found', message: `dead letter ${key} does not exist` };
    if (row.status !== 'pending') return alreadyDone(row);
    if (row.stage === 'relay') {
      if (!row.event_id || !row.tenant_id) throw invalidConfig(`dead letter ${key}`, 'a relay row with event_id and tenant_id', 'a row without them');
      await requeueEvent(client, row.event_id, row.tenant_id);
    } else {
      // Re-read under the lock only if the row lost its value since (a mirror reopening it).
      const record = withoutValue(row) ? (original ?? (await originalFromTopic(row, publisher, client))) : undefined;
      const message = consumerRetryMessage(row, options.routing, record);
      // Created by the publish, the retry topic would get the broker's default size and refuse
      // retry copies of events near their topic's limit: created first as the consumer does.
      await publisher.ensureCopyTopics?.([message.topic], [row.topic!]);
      await publisher.publish([message]);
    }
    await client.query(`UPDATE eventbus.dead_letters SET status = 'redriven', status_changed_at = now() WHERE id = $1`, [key]);
    const where = row.stage === 'relay' ? 'to the outbox' : `to the retry topic of group ${row.group_id}`;
    return { id: key, outcome: 'redriven', stage: row.stage, message: `dead letter ${key} re-driven ${where}` };
  });
}

/** Marks a pending dead letter `discarded` (it will not be re-driven); other statuses are left alone and reported. */
export async function discardDeadLetter(pool: pg.Pool, id: number | string): Promise<DeadLetterActionResult> {
  const key = deadLetterId(id);
  return inTransaction(pool, async (client) => {
    const row = await lockRow(client, key);
    if (!row) return { id: key, outcome: 'not_found', message: `dead letter ${key} does not exist` };
    if (row.status !== 'pending') return alreadyDone(row);
    await client.query(`UPDATE eventbus.dead_letters SET status = 'discarded', status_changed_at = now() WHERE id = $1`, [key]);
    return { id: key, outcome: 'discarded', stage: row.stage, message: `dead letter ${key} discarded` };
  });
}

/** Whether the row's DLQ record held no value (`eventbus-dlq-truncated`): a re-drive reads the original from its topic. */
function withoutValue(row: DeadLetterRow): boolean {
  return row.stage === 'consumer' && row.headers?.[DLQ_HEADER.truncated] !== undefined;
}

/** Where a consumer row's event was consumed, and by which group: what its re-drive needs. */
function consumerOrigin(row: DeadLetterRow): { groupId: string; topic: string; partition: number; offset: string } {
  if (!row.group_id || !row.topic || row.partition === null || row.offset === null) {
    throw invalidConfig(`dead letter ${row.id}`, 'a consumer row with group_id, topic, partition and offset', 'a row without them');
  }
  return { groupId: row.group_id, topic: row.topic, partition: row.partition, offset: row.offset };
}

/** The retry message of a consumer row: its stored copy, or `original` (read from its topic) for a row without the value. */
function consumerRetryMessage(row: DeadLetterRow, routing: TopicRoutingOptions | undefined, original: RecordToResend | undefined) {
  const origin = consumerOrigin(row);
  const headers = row.headers ?? {};
  const record = original ?? storedCopy(row, headers);
  // The DLQ header names the retry topic, so a re-drive needs no routing config; `routing` is the fallback.
  const topic = headers[DLQ_HEADER.retryTopic] ?? retryTopicFor(new TopicRouter(routing ?? {}).prefix, origin.groupId);
  const subscription = headers[DLQ_HEADER.subscription];
  const now = Date.now();
  return {
    topic,
    key: record.key,
    value: record.value,
    headers: encodeRetryHeaders(withoutHeaders(record.headers, Object.values(DLQ_HEADER)), {
      attempt: 1,
      dueAt: now,
      origin: { topic: origin.topic, partition: origin.partition, offset: origin.offset, timestamp: row.message_timestamp?.getTime() ?? 0 },
      firstFailureAt: now,
      ...(subscription ? { subscription } : {}),
    }),
  };
}

/** What a re-drive sends: the record's key, value and headers. */
interface RecordToResend {
  key: string | Buffer;
  value: string | Buffer;
  headers: Record<string, string | Buffer>;
}

/** The record as the DLQ record held it: its bytes (rows mirrored before migration 0004 only have text). */
function storedCopy(row: DeadLetterRow, headers: Record<string, string>): RecordToResend {
  return {
    key: row.message_key_bytes ?? row.message_key ?? '',
    value: row.value_bytes ?? row.value ?? '',
    headers: row.header_names && row.header_values ? headersFromBytes(row.header_names, row.header_values) : headers,
  };
}

/**
 * A row that stands for a DLQ copy too large for the DLQ topic (with or without the key) holds
 * no value: the original record is read from its topic at the row's coordinates, while Kafka
 * retains it, and re-sent whole. The record found there must be the dead letter's event (its
 * ce_id): a topic deleted and created again, or compacted, can hold another record at the same
 * offset, and re-driving that one would run the handler for an event that never failed.
 */
async function originalFromTopic(row: DeadLetterRow, publisher: MessagePublisher, db: pg.Pool | pg.ClientBase): Promise<RecordToResend> {
  const { topic, partition, offset } = consumerOrigin(row);
  const refusedBytes = row.headers?.[DLQ_HEADER.truncated] ?? '?';
  const position = { topic, partition, offset };
  const where = `${position.topic} partition ${position.partition} offset ${position.offset}`;
  if (!publisher.readRecordAt) {
    throw new EventBusError(
      'INVALID_CONFIG',
      `dead letter ${row.id} holds no value (its DLQ copy, ${refusedBytes} bytes, was larger than the DLQ topic accepts) and this publisher cannot read the original from ${where}: re-drive it with a Kafka publisher (KafkaPublisher)`,
      { details: { id: row.id, refusedCopyBytes: Number(refusedBytes), origin: where } },
    );
  }
  if (!isKafkaOffset(position.offset)) {
    // A replay to the group sends the event through the retry topic with the event id, read as
    // a 128-bit number, as its origin offset (replay-message.ts): it has no position to read.
    throw new EventBusError(
      'ORIGINAL_NOT_RETAINED',
      `dead letter ${row.id} holds no value and came from a replay to the group: its offset (${position.offset}) is the event id, not a position on ${position.topic}. ${await replayAdvice(db, row)}`,
      { details: { id: row.id, origin: where } },
    );
  }
  let record: StoredRecord;
  try {
    record = await publisher.readRecordAt(position);
  } catch (error) {
    if (isEventBusError(error, 'ORIGINAL_NOT_RETAINED')) throw originalGoneError(row, error, await replayAdvice(db, row));
    throw error;
  }
  const foundId = record.headers[HEADER.id]?.toString('utf8');
  // Without the row's event id (an undecodable message, or a ce_id too large for the DLQ
  // record, named in eventbus-dlq-dropped), a record with a ce_id is another event, unless
  // that ce_id is the one that was dropped. The record's timestamp, kept exact in the DLQ
  // headers, must match too: a topic created again holds other records at the same offsets.
  const idDropped = (row.headers?.[DLQ_HEADER.dropped] ?? '').split(',').some((part) => part.startsWith(`${HEADER.id}=`));
  const idMismatch = row.event_id !== null ? foundId !== row.event_id : foundId !== undefined && !idDropped;
  const expectedTimestamp = row.message_timestamp?.getTime() ?? 0;
  const timestampMismatch = expectedTimestamp > 0 && record.timestamp !== expectedTimestamp;
  if (idMismatch || timestampMismatch) {
    throw new EventBusError(
      'ORIGINAL_MISMATCH',
      `dead letter ${row.id} not re-driven: the record at ${where} is ${foundId === undefined ? 'a record without a ce_id header' : `event ${foundId}`} written at ${new Date(record.timestamp).toISOString()}, ` +
        `not ${row.event_id === null ? "the dead letter's record" : `event ${row.event_id}`}${expectedTimestamp > 0 ? ` written at ${new Date(expectedTimestamp).toISOString()}` : ''}; ` +
        `the topic was deleted and created again, compacted or rewritten since, or this is another cluster. ${await replayAdvice(db, row)}`,
      {
        details: {
          id: row.id,
          origin: where,
          expectedEventId: row.event_id,
          foundEventId: foundId ?? null,
          expectedTimestamp: expectedTimestamp || null,
          foundTimestamp: record.timestamp,
        },
      },
    );
  }
  return { key: record.key ?? '', value: record.value ?? '', headers: record.headers };
}

const MAX_KAFKA_OFFSET = 2n ** 63n - 1n;

/** Whether `offset` can be a Kafka offset (an int64 of 0 or more). */
function isKafkaOffset(offset: string): boolean {
  return /^\d{1,19}$/.test(offset) && BigInt(offset) <= MAX_KAFKA_OFFSET;
}

/** The original is no longer on its topic: what the operator can do instead. */
function originalGoneError(row: DeadLetterRow, cause: EventBusError, advice: string): EventBusError {
  return new EventBusError('ORIGINAL_NOT_RETAINED', `dead letter ${row.id} holds no value and its original is gone: ${cause.message}. ${advice}`, {
    cause,
    details: { id: row.id, ...cause.details },
  });
}

/**
 * The replay that re-sends the row's event to its group from the EventLog, in place of the
 * original the re-drive cannot read: `eventbus replay --event-id`, which selects exactly this
 * event (not the other events of its transaction, which share its created_at). The event is
 * looked up by its id first (findEventReplayWindow, for the EventLog's tenant and created_at),
 * so an event this database does not have is said to be missing rather than advised a replay
 * that would fail. A row without an event id can only be looked for by time: the Kafka
 * record's timestamp, the relay's publish time, bounds its created_at from above.
 */
async function replayAdvice(db: pg.Pool | pg.ClientBase, row: DeadLetterRow): Promise<string> {
  const group = `--group ${shellQuote(row.group_id ?? '<group>')}`;
  if (row.event_id === null) {
    // The relay publishes after the commit: created_at is before the record's timestamp (clocks of the database and the relay's host apart).
    const tenant = row.tenant_id === null ? '<tenant>' : shellQuote(row.tenant_id);
    const type = row.event_type === null ? `'<type>'` : shellQuote(row.event_type, { always: true });
    const to = row.message_timestamp ? row.message_timestamp.toISOString() : '<…>';
    return (
      `This dead letter has no event id (an undecodable message, or a ce_id too large to keep), so the EventLog cannot be searched for it. ` +
      `If the relay wrote it, it was created before its record's timestamp and after that minus the relay's lag then: ` +
      `look with eventbus replay --tenant ${tenant} ${group} --types ${type} --from <…> --to ${to} --dry-run, replay it without --dry-run, then discard this dead letter`
    );
  }
  const byId = (tenantId: string | null) =>
    `eventbus replay --tenant ${tenantId === null ? '<tenant>' : shellQuote(tenantId)} ${group} --event-id ${shellQuote(row.event_id!)}`;
  let window: Awaited<ReturnType<typeof findEventReplayWindow>>;
  try {
    window = await findEventReplayWindow(db, row.event_id);
  } catch (error) {
    return `The EventLog could not be searched for event ${row.event_id} (${errorMessage(error)}); replay it with ${byId(row.tenant_id)}, then discard this dead letter`;
  }
  if (!window) {
    // Only a uuid can be an EventLog id: for another ce_id, no replay anywhere would find it.
    const elsewhere = EVENT_ID.test(row.event_id) ? `: replay it there with ${byId(row.tenant_id)}` : '';
    return (
      `This database's EventLog has no event ${row.event_id} (pruned by retention, or written through another database${elsewhere}); ` +
      `nothing here can re-send it, discard this dead letter once it is handled otherwise`
    );
  }
  return `The EventLog has event ${row.event_id}, created at ${window.createdAt}: replay it to the group (${byId(window.tenantId)}), then discard this dead letter`;
}

const EVENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Headers from the row's bytea arrays: values stay bytes; a repeated name keeps its last value; a null value is left out. */
function headersFromBytes(names: readonly Buffer[], values: ReadonlyArray<Buffer | null>): Record<string, string | Buffer> {
  const headers: Record<string, string | Buffer> = {};
  names.forEach((name, i) => {
    const value = values[i];
    if (value !== null && value !== undefined) headers[name.toString('utf8')] = value;
  });
  return headers;
}

function alreadyDone(row: DeadLetterRow): DeadLetterActionResult {
  const outcome = row.status === 'redriven' ? 'already_redriven' : 'already_discarded';
  return { id: row.id, outcome, stage: row.stage, message: `dead letter ${row.id} is already ${row.status}; nothing done` };
}

const ROW_COLUMNS = `id::text, stage, status, group_id, event_id, event_type, tenant_id, topic, partition, "offset", message_timestamp, message_key, value, headers,
            message_key_bytes, value_bytes, header_names, header_values`;

async function lockRow(client: pg.ClientBase, id: string): Promise<DeadLetterRow | undefined> {
  const { rows } = await client.query<DeadLetterRow>(`SELECT ${ROW_COLUMNS} FROM eventbus.dead_letters WHERE id = $1 FOR UPDATE`, [id]);
  return rows[0];
}

/** The row without a lock: what a re-drive reads before it locks the row (redriveDeadLetter). */
async function readRow(pool: pg.Pool, id: string): Promise<DeadLetterRow | undefined> {
  const { rows } = await pool.query<DeadLetterRow>(`SELECT ${ROW_COLUMNS} FROM eventbus.dead_letters WHERE id = $1`, [id]);
  return rows[0];
}

function deadLetterId(id: number | string): string {
  const text = String(id);
  if (!/^[1-9]\d{0,18}$/.test(text)) throw invalidConfig('id', 'a dead letter id (a positive integer)', id);
  return text;
}
