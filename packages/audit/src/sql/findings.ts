import type pg from 'pg';

/**
 * The comparisons, each one statement over the audit's temporary tables (sql/audit-tables.ts).
 * Each returns its total and the first `$n` rows as samples: the report stays small however
 * many rows a finding has.
 *
 * Scope: an event is the audit's when it is in the event log window (`audit_log.in_window`).
 * A Kafka record with no event-log row is the audit's when its own time (ce_time, else the
 * record timestamp) is in the window and its tenant and type headers match the filters.
 */

/** A count and the first rows. */
export interface Finding<T> {
  count: number;
  samples: T[];
}

export interface EventSample {
  eventId: string;
  tenantId: string;
  eventType: string;
  createdAt: string;
}

export interface RecordSample {
  ceId: string | null;
  tenantId: string | null;
  eventType: string | null;
  topic: string;
  partition: number;
  offset: string;
}

/** Totals of the window: events, those on Kafka, those still in the outbox, those the relay dead-lettered. */
export const WINDOW_TOTALS_SQL = `
SELECT count(*)::bigint AS events,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_kafka k WHERE k.ce_uuid = l.id))::bigint AS on_kafka,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_id = l.id))::bigint AS pending,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_dead d WHERE d.stage = 'relay' AND d.event_id = l.id::text))::bigint AS relay_dead_lettered,
       (SELECT count(*) FROM audit_kafka k JOIN audit_log w ON w.id = k.ce_uuid AND w.in_window WHERE k.replay_id IS NOT NULL)::bigint AS replayed
  FROM audit_log l WHERE l.in_window`;

export interface WindowTotals {
  events: number;
  onKafka: number;
  pending: number;
  relayDeadLettered: number;
  /** Records of the window's events that a replay sent (header ce_replayid): expected copies, not duplicates. */
  replayed: number;
}

export async function windowTotals(client: pg.ClientBase): Promise<WindowTotals> {
  const { rows } = await client.query(WINDOW_TOTALS_SQL);
  const r = rows[0];
  return {
    events: Number(r.events),
    onKafka: Number(r.on_kafka),
    pending: Number(r.pending),
    relayDeadLettered: Number(r.relay_dead_lettered),
    replayed: Number(r.replayed),
  };
}

/** In the window's log, not on Kafka, not waiting in the outbox, not dead-lettered by the relay. */
export const MISSING_SQL = `
SELECT l.id::text AS event_id, l.tenant_id, l.event_type, l.created_at, count(*) OVER ()::bigint AS total
  FROM audit_log l
 WHERE l.in_window
   AND NOT EXISTS (SELECT 1 FROM audit_kafka k WHERE k.ce_uuid = l.id)
   AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.event_id = l.id)
   AND NOT EXISTS (SELECT 1 FROM audit_dead d WHERE d.stage = 'relay' AND d.event_id = l.id::text)
 ORDER BY l.created_at, l.id
 LIMIT $1`;

export async function missingEvents(client: pg.ClientBase, limit: number): Promise<Finding<EventSample>> {
  const { rows } = await client.query(MISSING_SQL, [limit]);
  return { count: Number(rows[0]?.total ?? 0), samples: rows.map(eventSample) };
}

/** On Kafka in the window's scope, with no event-log row at all (or no ce_id). */
export const PHANTOM_SQL = `
SELECT k.ce_id, k.tenant_id, k.event_type, k.topic, k.partition, k."offset"::text AS "offset", count(*) OVER ()::bigint AS total
  FROM audit_kafka k
 WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.id = k.ce_uuid)
   AND k.event_time >= $2::timestamptz AND k.event_time <= $3::timestamptz
   AND ($4::text IS NULL OR k.tenant_id = $4::text)
   AND ($5::text[] IS NULL OR k.event_type ~ ANY ($5::text[]))
 ORDER BY k.topic, k.partition, k."offset"
 LIMIT $1`;

export interface Scope {
  from: Date;
  to: Date;
  tenantId: string | null;
  typeRegexes: string[] | null;
}

export async function phantomRecords(client: pg.ClientBase, limit: number, scope: Scope): Promise<Finding<RecordSample>> {
  const { rows } = await client.query(PHANTOM_SQL, [limit, scope.from, scope.to, scope.tenantId, scope.typeRegexes]);
  return { count: Number(rows[0]?.total ?? 0), samples: rows.map(recordSample) };
}

export interface DuplicateSample extends EventSample {
  copies: number;
  positions: string[];
}

/**
 * Window events written to Kafka more than once, replays aside: the relay re-sent them (at
 * least once delivery: a send whose answer was lost). Consumers that deduplicate by ce_id
 * handle them once.
 */
export const DUPLICATES_SQL = `
SELECT l.id::text AS event_id, l.tenant_id, l.event_type, l.created_at, count(*)::int AS copies,
       array_agg(k.topic || '/' || k.partition || '@' || k."offset" ORDER BY k.topic, k.partition, k."offset") AS positions,
       count(*) OVER ()::bigint AS total
  FROM audit_kafka k JOIN audit_log l ON l.id = k.ce_uuid AND l.in_window
 WHERE k.replay_id IS NULL
 GROUP BY l.id
HAVING count(*) > 1
 ORDER BY l.created_at, l.id
 LIMIT $1`;

export async function duplicateEvents(client: pg.ClientBase, limit: number): Promise<Finding<DuplicateSample>> {
  const { rows } = await client.query(DUPLICATES_SQL, [limit]);
  return { count: Number(rows[0]?.total ?? 0), samples: rows.map((r) => ({ ...eventSample(r), copies: r.copies, positions: r.positions })) };
}

export interface InversionSample {
  tenantId: string;
  topic: string;
  partition: number;
  /** The event at `offset` was written to the log before the one Kafka has just before it. */
  eventId: string;
  offset: string;
  createdAt: string;
  afterEventId: string;
  afterOffset: string;
  afterCreatedAt: string;
}

/**
 * Per tenant and partition, the first record of each window event in offset order, compared
 * with the record before it: an event the log orders before its predecessor on Kafka
 * ((created_at, id), the replay order) is an inversion. Adjacent pairs only, as a consumer
 * sees it: one event published late counts once.
 */
export const INVERSIONS_SQL = `
WITH firsts AS (
  SELECT DISTINCT ON (k.ce_uuid) k.ce_uuid AS id, k.topic, k.partition, k."offset", l.tenant_id, l.created_at
    FROM audit_kafka k JOIN audit_log l ON l.id = k.ce_uuid AND l.in_window
   WHERE k.replay_id IS NULL
   ORDER BY k.ce_uuid, k."offset"
), adjacent AS (
  SELECT f.*, lag(f.id) OVER w AS prev_id, lag(f.created_at) OVER w AS prev_created_at, lag(f."offset") OVER w AS prev_offset
    FROM firsts f
  WINDOW w AS (PARTITION BY f.tenant_id, f.topic, f.partition ORDER BY f."offset")
)
SELECT tenant_id, topic, partition, id::text AS event_id, "offset"::text AS "offset", created_at,
       prev_id::text AS after_event_id, prev_offset::text AS after_offset, prev_created_at,
       count(*) OVER ()::bigint AS total
  FROM adjacent
 WHERE prev_id IS NOT NULL AND (created_at, id) < (prev_created_at, prev_id)
 ORDER BY tenant_id, topic, partition, "offset"
 LIMIT $1`;

export async function orderInversions(client: pg.ClientBase, limit: number): Promise<Finding<InversionSample>> {
  const { rows } = await client.query(INVERSIONS_SQL, [limit]);
  return {
    count: Number(rows[0]?.total ?? 0),
    samples: rows.map((r) => ({
      tenantId: r.tenant_id,
      topic: r.topic,
      partition: r.partition,
      eventId: r.event_id,
      offset: r.offset,
      createdAt: r.created_at.toISOString(),
      afterEventId: r.after_event_id,
      afterOffset: r.after_offset,
      afterCreatedAt: r.prev_created_at.toISOString(),
    })),
  };
}

export interface GroupTotals {
  /** Window events with a record below the group's committed offset. */
  passed: number;
  handled: number;
  deadLettered: number;
}

/** For one group: the window events its commits have passed, and how many of those its inbox and the DLQ table account for. */
export const GROUP_TOTALS_SQL = `
WITH passed AS (
  SELECT DISTINCT l.id
    FROM audit_kafka k JOIN audit_log l ON l.id = k.ce_uuid AND l.in_window
    JOIN audit_committed c ON c.group_id = $1 AND c.topic = k.topic AND c.partition = k.partition AND k."offset" < c.next_offset
)
SELECT count(*)::bigint AS passed,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_handled h WHERE h.group_id = $1 AND h.event_id = p.id::text))::bigint AS handled,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_dead d WHERE d.stage = 'consumer' AND d.group_id = $1 AND d.event_id = p.id::text))::bigint AS dead_lettered
  FROM passed p`;

export async function groupTotals(client: pg.ClientBase, groupId: string): Promise<GroupTotals> {
  const { rows } = await client.query(GROUP_TOTALS_SQL, [groupId]);
  const r = rows[0];
  return { passed: Number(r.passed), handled: Number(r.handled), deadLettered: Number(r.dead_lettered) };
}

export interface GapSample extends EventSample {
  topic: string;
  partition: number;
  offset: string;
  committed: string;
}

/** Window events below the group's committed offset that are neither in its inbox nor in the DLQ table for it. */
export const GROUP_GAPS_SQL = `
WITH gaps AS (
  SELECT DISTINCT ON (l.id) l.id, l.tenant_id, l.event_type, l.created_at, k.topic, k.partition, k."offset", c.next_offset
    FROM audit_kafka k JOIN audit_log l ON l.id = k.ce_uuid AND l.in_window
    JOIN audit_committed c ON c.group_id = $1 AND c.topic = k.topic AND c.partition = k.partition AND k."offset" < c.next_offset
   WHERE NOT EXISTS (SELECT 1 FROM audit_handled h WHERE h.group_id = $1 AND h.event_id = l.id::text)
     AND NOT EXISTS (SELECT 1 FROM audit_dead d WHERE d.stage = 'consumer' AND d.group_id = $1 AND d.event_id = l.id::text)
   ORDER BY l.id, k."offset"
)
SELECT id::text AS event_id, tenant_id, event_type, created_at, topic, partition, "offset"::text AS "offset",
       next_offset::text AS committed, count(*) OVER ()::bigint AS total
  FROM gaps
 ORDER BY created_at, id
 LIMIT $2`;

export async function groupGaps(client: pg.ClientBase, groupId: string, limit: number): Promise<Finding<GapSample>> {
  const { rows } = await client.query(GROUP_GAPS_SQL, [groupId, limit]);
  return {
    count: Number(rows[0]?.total ?? 0),
    samples: rows.map((r) => ({ ...eventSample(r), topic: r.topic, partition: r.partition, offset: r.offset, committed: r.committed })),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: a driver row whose column types the SQL fixes
function eventSample(r: Record<string, any>): EventSample {
  return { eventId: r.event_id, tenantId: r.tenant_id, eventType: r.event_type, createdAt: (r.created_at as Date).toISOString() };
}

// biome-ignore lint/suspicious/noExplicitAny: a driver row whose column types the SQL fixes
function recordSample(r: Record<string, any>): RecordSample {
  return { ceId: r.ce_id, tenantId: r.tenant_id, eventType: r.event_type, topic: r.topic, partition: r.partition, offset: r.offset };
}
