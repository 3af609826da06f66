import type pg from 'pg';

/**
 * The audit's working tables: temporary (its own session's, dropped when the session ends,
 * never WAL-logged), so the comparison runs in Postgres with anti-joins and window functions
 * while Node holds one Kafka fetch batch at a time. Each owner's rows are copied in by that
 * owner's statement (event log and outbox: @eventbus/outbox; dead letters: @eventbus/dead-letters).
 */
export const TABLES = {
  log: 'pg_temp.audit_log',
  kafka: 'pg_temp.audit_kafka',
  pending: 'pg_temp.audit_pending',
  dead: 'pg_temp.audit_dead',
  handled: 'pg_temp.audit_handled',
  committed: 'pg_temp.audit_committed',
} as const;

/**
 * Session settings first (temp_buffers can only be set before the session touches a temporary
 * table): with the default 8 MB of temp_buffers a 200k-event audit's tables live mostly in
 * files, and each comparison ran for tens of seconds. Memory of this one backend, for the
 * audit's duration; the connection is closed afterwards (see runAudit).
 */
export const CREATE_AUDIT_TABLES_SQL = `
SET temp_buffers = '256MB';
SET work_mem = '64MB';
CREATE TEMPORARY TABLE audit_log (id uuid PRIMARY KEY, tenant_id text NOT NULL, event_type text NOT NULL, created_at timestamptz NOT NULL, in_window boolean NOT NULL);
CREATE TEMPORARY TABLE audit_kafka (
  ce_id text, ce_uuid uuid, tenant_id text, event_type text, replay_id text,
  topic text NOT NULL, partition int NOT NULL, "offset" bigint NOT NULL, event_time timestamptz NOT NULL);
CREATE TEMPORARY TABLE audit_pending (event_id uuid PRIMARY KEY);
CREATE TEMPORARY TABLE audit_dead (stage text NOT NULL, group_id text, event_id text NOT NULL);
CREATE TEMPORARY TABLE audit_handled (group_id text NOT NULL, event_id text NOT NULL);
CREATE TEMPORARY TABLE audit_committed (group_id text NOT NULL, topic text NOT NULL, partition int NOT NULL, next_offset bigint NOT NULL)`;

/**
 * Statistics and an index once the window and the Kafka records are in: autovacuum never sees
 * temporary tables, and without statistics the planner took the 200k-row tables for a few
 * rows and probed them in nested loops (the by-id event-log copy ran for minutes).
 */
export const ANALYZE_COPIES_SQL = `
CREATE INDEX ON audit_kafka (ce_uuid);
ANALYZE audit_log; ANALYZE audit_kafka; ANALYZE audit_pending`;

/** Indexes built after the bulk copies (cheaper than maintaining them row by row), then statistics for the planner. */
export const INDEX_AUDIT_TABLES_SQL = `
CREATE INDEX ON audit_dead (event_id);
CREATE INDEX ON audit_handled (group_id, event_id);
ANALYZE audit_log; ANALYZE audit_dead; ANALYZE audit_handled; ANALYZE audit_committed`;

export async function createAuditTables(client: pg.ClientBase): Promise<void> {
  await client.query(CREATE_AUDIT_TABLES_SQL);
}

export async function analyzeCopies(client: pg.ClientBase): Promise<void> {
  await client.query(ANALYZE_COPIES_SQL);
}

export async function indexAuditTables(client: pg.ClientBase): Promise<void> {
  await client.query(INDEX_AUDIT_TABLES_SQL);
}

/** One Kafka record, as the audit stores it. */
export interface KafkaRow {
  ceId: string | null;
  ceUuid: string | null;
  tenantId: string | null;
  eventType: string | null;
  replayId: string | null;
  topic: string;
  partition: number;
  offset: string;
  eventTime: Date;
}

/**
 * One INSERT per fetch batch, the rows as one JSON document (`kafkaRowsJson`): one round trip
 * and one plan whatever the batch's size, and Postgres parses the rows in C. With one array
 * per column, node-postgres quotes and escapes every element in JavaScript, on the thread that
 * also decodes Kafka's fetches (a 100,000-record audit's CPU profile: about 1.3 s of the CLI's
 * 15 s of work in array escaping and date formatting); JSON.stringify is native. The record
 * set's column names are the KafkaRow properties, quoted. A header value with a NUL, which
 * Postgres text cannot hold, fails the INSERT and so the audit.
 */
export const INSERT_KAFKA_ROWS_SQL = `
INSERT INTO audit_kafka (ce_id, ce_uuid, tenant_id, event_type, replay_id, topic, partition, "offset", event_time)
SELECT "ceId", "ceUuid", "tenantId", "eventType", "replayId", topic, partition, "offset", "eventTime"
  FROM json_to_recordset($1::json) AS r("ceId" text, "ceUuid" uuid, "tenantId" text, "eventType" text, "replayId" text,
                                         topic text, partition int, "offset" bigint, "eventTime" timestamptz)`;

/** A batch of rows as INSERT_KAFKA_ROWS_SQL takes them (dates as ISO 8601, through Date#toJSON). */
export function kafkaRowsJson(rows: readonly KafkaRow[]): string {
  return JSON.stringify(rows);
}

/** Inserts one batch serialized by `kafkaRowsJson`. */
export async function insertKafkaRows(client: pg.ClientBase, rowsJson: string): Promise<void> {
  await client.query(INSERT_KAFKA_ROWS_SQL, [rowsJson]);
}

export const INSERT_COMMITTED_SQL = `
INSERT INTO audit_committed (group_id, topic, partition, next_offset)
SELECT $1::text, * FROM unnest($2::text[], $3::int[], $4::bigint[])`;

/** A group's committed offsets (those it committed; -1 = none, left out). */
export async function insertCommittedOffsets(
  client: pg.ClientBase,
  groupId: string,
  offsets: ReadonlyArray<{ topic: string; partition: number; offset: string }>,
): Promise<void> {
  const committed = offsets.filter((o) => BigInt(o.offset) >= 0n);
  if (committed.length === 0) return;
  await client.query(INSERT_COMMITTED_SQL, [groupId, committed.map((o) => o.topic), committed.map((o) => o.partition), committed.map((o) => o.offset)]);
}
