import { sql } from 'drizzle-orm';
import { bigint, check, customType, index, integer, jsonb, pgSchema, primaryKey, smallint, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** Raw bytes (node-postgres reads and writes a bytea as a Buffer); drizzle 0.45 has no bytea column of its own. */
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });

/** Every table lives in its own Postgres schema so it never collides with domain tables. */
export const eventbus = pgSchema('eventbus');

/**
 * The append-only EventLog: the history replay reads. A trigger (migration 0001) refuses
 * UPDATE and DELETE. (tenant_id, event_key) is the producer's idempotency key.
 */
export const eventLog = eventbus.table(
  'event_log',
  {
    id: uuid('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    projectId: text('project_id'),
    eventKey: text('event_key').notNull(),
    eventType: text('event_type').notNull(),
    eventVersion: integer('event_version').notNull().default(1),
    payload: jsonb('payload').notNull(),
    correlationId: text('correlation_id').notNull(),
    causationId: text('causation_id'),
    /** The producer's W3C trace context, so the relay's publish span continues its trace. */
    traceparent: text('traceparent'),
    tracestate: text('tracestate'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('event_log_tenant_event_key_uq').on(t.tenantId, t.eventKey),
    // Replay reads one tenant's window in keyset pages of (created_at, id).
    index('event_log_tenant_created_idx').on(t.tenantId, t.createdAt, t.id),
    index('event_log_type_created_idx').on(t.eventType, t.createdAt),
  ],
);

/**
 * What the relay still has to publish: a slim row per event (ids, shard, retry state), no
 * payload copy. Copying the payload would cost producer throughput for nothing: the relay
 * joins event_log when it claims. Rows are deleted once Kafka acknowledged them.
 *
 * Why claim-and-delete and not a `WHERE id > last_seen` cursor: ids are assigned at insert
 * but become visible at commit, so a cursor skips rows of transactions that commit late.
 * A claimed row is never skipped; see packages/outbox/src/outbox/claim-batch.ts.
 */
export const outbox = eventbus.table(
  'outbox',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    eventId: uuid('event_id').notNull(),
    /** Tenants hash into SHARD_COUNT shards; one relay instance publishes a shard at a time. */
    shard: smallint('shard').notNull(),
    /** Failed publish attempts so far (row-level failures only, not broker outages). */
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    firstFailedAt: timestamp('first_failed_at', { withTimezone: true, mode: 'date' }),
    lastError: text('last_error'),
  },
  (t) => [
    uniqueIndex('outbox_event_id_uq').on(t.eventId),
    // What relays older than migration 0005 claim through; the current claim reads only the
    // two partial indexes below. Kept one release so that a rolling upgrade's old relays keep their
    // plan (migrations only add while old instances may run); a later migration drops it.
    index('outbox_shard_id_idx').on(t.shard, t.id),
    // The claim walks each owned shard's rows that never failed in id order, and takes the rows
    // Kafka refused once they are due, by due time: a tenant with thousands of rows in backoff
    // must not be read by every claim of its shard (migration 0005).
    index('outbox_fresh_idx').on(t.shard, t.id).where(sql`${t.attempts} = 0`),
    index('outbox_retry_due_idx').on(t.nextAttemptAt).where(sql`${t.attempts} > 0`),
  ],
);

/** Dead letters from both stages: the relay (could not publish) and consumers (handler gave up). */
export const deadLetters = eventbus.table(
  'dead_letters',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    /** Makes mirroring idempotent: `relay:{eventId}` or `consumer:{group}:{topic}:{partition}:{offset}`. */
    dedupeKey: text('dedupe_key').notNull(),
    stage: text('stage', { enum: ['relay', 'consumer'] }).notNull(),
    groupId: text('group_id'),
    eventId: text('event_id'),
    tenantId: text('tenant_id'),
    eventType: text('event_type'),
    eventKey: text('event_key'),
    topic: text('topic'),
    partition: integer('partition'),
    offset: text('offset'),
    messageTimestamp: timestamp('message_timestamp', { withTimezone: true, mode: 'date' }),
    /** The key as readable text: UTF-8, with invalid sequences and NUL shown as U+FFFD (lossy; see messageKeyBytes). */
    messageKey: text('message_key'),
    /** The original value as readable text, like message_key (it may not be JSON: undecodable messages land here too). */
    value: text('value'),
    /** Header name -> value as readable text, like message_key (the last value of a repeated header). */
    headers: jsonb('headers').$type<Record<string, string>>().notNull().default({}),
    /**
     * The DLQ record's key, value and headers byte for byte (migration 0004), written by the
     * DLQ mirror: what a re-drive sends. Headers as two arrays of the same length, in record
     * order, repeats kept. NULL in rows written before 0004 and in relay rows; readers then
     * fall back to the text columns above.
     */
    messageKeyBytes: bytea('message_key_bytes'),
    valueBytes: bytea('value_bytes'),
    headerNames: bytea('header_names').array(),
    headerValues: bytea('header_values').array(),
    errorClass: text('error_class').notNull(),
    errorMessage: text('error_message').notNull(),
    errorStack: text('error_stack'),
    attempts: integer('attempts').notNull(),
    firstFailedAt: timestamp('first_failed_at', { withTimezone: true, mode: 'date' }).notNull(),
    lastFailedAt: timestamp('last_failed_at', { withTimezone: true, mode: 'date' }).notNull(),
    status: text('status', { enum: ['pending', 'redriven', 'discarded'] })
      .notNull()
      .default('pending'),
    statusChangedAt: timestamp('status_changed_at', { withTimezone: true, mode: 'date' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('dead_letters_dedupe_key_uq').on(t.dedupeKey),
    index('dead_letters_status_created_idx').on(t.status, t.createdAt),
    index('dead_letters_group_idx').on(t.groupId, t.status),
    check('dead_letters_stage_group_ck', sql`${t.stage} = 'relay' OR ${t.groupId} IS NOT NULL`),
    check('dead_letters_header_arrays_ck', sql`cardinality(${t.headerNames}) = cardinality(${t.headerValues})`),
  ],
);

/**
 * DLQ records the mirror could not store in dead_letters (a row Postgres refuses: a value out
 * of a column's range, a constraint, a size limit) after its bounded retries: the record's
 * position in its DLQ topic, the error and the record's bytes, written in the statement that
 * moves the mirror's position past it, so one such record never stops the partition behind
 * it. See docs/dead-letters.md. Bytes are NULL when even this row could not hold them.
 */
export const deadLettersUnstorable = eventbus.table(
  'dead_letters_unstorable',
  {
    topic: text('topic').notNull(),
    partition: integer('partition').notNull(),
    offset: bigint('offset', { mode: 'number' }).notNull(),
    /** Inserts tried before the record was skipped. */
    attempts: integer('attempts').notNull(),
    /** The Postgres SQLSTATE of the last failure (e.g. 22003 numeric out of range, 23514 check violation). */
    errorCode: text('error_code'),
    errorMessage: text('error_message').notNull(),
    messageKey: bytea('message_key'),
    value: bytea('value'),
    headerNames: bytea('header_names').array(),
    headerValues: bytea('header_values').array(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.topic, t.partition, t.offset] })],
);

/**
 * Consumer inbox: (group, event id, subscription) keys whose side effects were committed.
 * `subscription` '' is the group-wide key: `processOnce` called without a subscription, and
 * every row written before migration 0007. The key's order puts a subscription's row beside
 * the group-wide one, so `processOnce` checks both in one index descent.
 */
export const inbox = eventbus.table(
  'inbox',
  {
    groupId: text('group_id').notNull(),
    eventId: text('event_id').notNull(),
    processedAt: timestamp('processed_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    subscription: text('subscription').notNull().default(''),
  },
  (t) => [primaryKey({ columns: [t.groupId, t.eventId, t.subscription] })],
);

/** Live relay instances (heartbeats) and the shards each holds, for balancing and `outbox status`. */
export const relayInstances = eventbus.table('relay_instances', {
  instanceId: text('instance_id').primaryKey(),
  host: text('host').notNull(),
  pid: integer('pid').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  heartbeatAt: timestamp('heartbeat_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  shards: smallint('shards').array().notNull().default(sql`'{}'::smallint[]`),
});

/**
 * How far the DLQ mirror has copied each DLQ topic partition into dead_letters: the next
 * offset to copy. Written in the statement that inserts the dead letter, so the table and the
 * position never disagree, and read by that same statement: a DLQ record below the position
 * was copied before and is skipped. Without it, a mirror whose consumer group lost its
 * offsets (group renamed, or idle longer than Kafka's offsets.retention.minutes) re-read the
 * DLQ topics from the beginning and brought dead letters back that operators had resolved and
 * `eventbus prune` had deleted.
 */
export const dlqMirrorPositions = eventbus.table(
  'dlq_mirror_positions',
  {
    topic: text('topic').notNull(),
    partition: integer('partition').notNull(),
    nextOffset: bigint('next_offset', { mode: 'number' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.topic, t.partition] })],
);
