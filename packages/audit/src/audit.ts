import type pg from 'pg';
import { HEADER, parseRfc3339, type TopicRouter } from '@eventbus/core';
import { copyHandledEvents, groupsWithInbox } from '@eventbus/consumer';
import { copyDeadLetteredEvents } from '@eventbus/dead-letters';
import type { RangeRecord, TopicRangeReader } from '@eventbus/kafka';
import { copyEventLogByIds, copyEventLogWindow, copyPendingOutbox } from '@eventbus/outbox';
import {
  analyzeCopies,
  createAuditTables,
  indexAuditTables,
  insertCommittedOffsets,
  insertKafkaRows,
  kafkaRowsJson,
  TABLES,
  type KafkaRow,
} from './sql/audit-tables.js';
import {
  duplicateEvents,
  groupGaps,
  groupTotals,
  missingEvents,
  orderInversions,
  phantomRecords,
  windowTotals,
  type DuplicateSample,
  type EventSample,
  type Finding,
  type GapSample,
  type InversionSample,
  type RecordSample,
  type WindowTotals,
} from './sql/findings.js';
import { LoadQueue } from './load-queue.js';
import { resolveAuditOptions, type AuditOptions } from './options.js';

/** What a group's committed offsets tell about the window's events. */
export interface GroupReport {
  groupId: string;
  /** `inbox`: the group has inbox rows, so "handled" is known; `none`: it has none, so gaps cannot be told apart from handled events. */
  evidence: 'inbox' | 'none';
  /** Partitions of the audited topics where the group has committed an offset. */
  committedPartitions: number;
  passed: number;
  handled: number;
  deadLettered: number;
  /** Passed, but neither in the inbox nor dead-lettered for the group; null without evidence. */
  gaps: Finding<GapSample> | null;
}

/** The audit's result; `clean` is false when anything is missing or phantom. */
export interface AuditReport extends WindowTotals {
  window: { from: string; to: string; tenantId: string | null; eventTypes: string[]; marginMs: number };
  topics: string[];
  /** Offsets read from Kafka: per partition, from the first record at or after from − margin to the first at or after to + margin (or the end). */
  kafka: { partitions: number; records: number; readFrom: string; readTo: string };
  missing: Finding<EventSample>;
  phantom: Finding<RecordSample>;
  duplicates: Finding<DuplicateSample>;
  inversions: Finding<InversionSample>;
  groups: GroupReport[];
  clean: boolean;
  elapsedMs: number;
}

/**
 * Kafka batches (one partition's fetch, up to kafkajs' 1 MB per partition) that may wait for
 * their INSERT while the reader fetches on: enough to keep Postgres busy across a fetch round
 * trip, few enough that memory stays a few batches.
 */
const LOAD_QUEUE_DEPTH = 4;

export type AuditPhase = 'event log' | 'kafka' | 'compare';

/** Progress: `done` of `total` units of the phase (events copied, records read, steps). */
export interface AuditProgress {
  phase: AuditPhase;
  done: number;
  total: number;
  elapsedMs: number;
}

/**
 * Compares a window of the event log with what is on Kafka, the outbox and the DLQ table
 * (see docs/cli.md#audit). Every id set lives in temporary tables of one Postgres
 * session (`db` gives one connection for the whole audit); Node holds a few Kafka fetch batches
 * (the one being read, those waiting in the load queue and the one being inserted) and the
 * findings' samples, so memory does not grow with the window.
 *
 * Order matters for a live pipeline: the outbox is read after the window and before the Kafka
 * ranges are fixed, so an event the relay publishes meanwhile is either still pending or
 * already inside the ranges.
 */
export async function runAudit(db: pg.Pool, reader: TopicRangeReader, options: AuditOptions): Promise<AuditReport> {
  const o = resolveAuditOptions(options);
  const started = Date.now();
  const progress = (phase: AuditPhase, done: number, total: number) => o.onProgress?.({ phase, done, total, elapsedMs: Date.now() - started });
  const client = await db.connect();
  try {
    await createAuditTables(client);
    const events = await copyEventLogWindow(client, TABLES.log, { from: o.from, to: o.to, tenantId: o.tenantId, typeRegexes: o.typeRegexes });
    progress('event log', events, events);
    await copyPendingOutbox(client, TABLES.pending, TABLES.log);

    await reader.connect();
    const topics = await reader.existingTopics(await auditedTopics(client, o.router, o.eventTypes));
    const readFrom = o.from.getTime() - o.marginMs;
    const readTo = o.to.getTime() + o.marginMs;
    const ranges = await reader.rangesByTime(topics, readFrom, readTo);
    const total = ranges.reduce((n, r) => n + Number(BigInt(r.end) - BigInt(r.start)), 0);
    let records = 0;
    progress('kafka', 0, total);
    const loads = new LoadQueue<{ json: string; count: number }>(async ({ json, count }) => {
      await insertKafkaRows(client, json);
      records += count;
      progress('kafka', records, total);
    }, LOAD_QUEUE_DEPTH);
    try {
      // Serialized before queueing: one string per waiting batch, not its records' objects.
      await reader.read(ranges, (batch) => loads.push({ json: kafkaRowsJson(batch.map(kafkaRow)), count: batch.length }), o.signal);
    } finally {
      // Even when the read failed: no insert may still run on the connection when it is closed.
      await loads.flush().catch(() => undefined);
    }
    await loads.flush();
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('audit aborted');

    await analyzeCopies(client);
    await copyEventLogByIds(client, TABLES.log, { table: TABLES.kafka, column: 'ce_uuid' });
    await copyDeadLetteredEvents(client, TABLES.dead, o.groups);
    await copyHandledEvents(client, { target: TABLES.handled, events: TABLES.log }, o.groups);
    for (const groupId of o.groups) await insertCommittedOffsets(client, groupId, await reader.committedOffsets(groupId, topics));
    await indexAuditTables(client);
    progress('compare', 0, 1);

    const scope = { from: o.from, to: o.to, tenantId: o.tenantId, typeRegexes: o.typeRegexes };
    const totals = await windowTotals(client);
    const missing = await missingEvents(client, o.sampleLimit);
    const phantom = await phantomRecords(client, o.sampleLimit, scope);
    const duplicates = await duplicateEvents(client, o.sampleLimit);
    const inversions = await orderInversions(client, o.sampleLimit);
    const groups = await groupReports(client, o.groups, o.sampleLimit);
    progress('compare', 1, 1);
    return {
      window: { from: o.from.toISOString(), to: o.to.toISOString(), tenantId: o.tenantId, eventTypes: o.eventTypes, marginMs: o.marginMs },
      topics,
      kafka: { partitions: ranges.length, records, readFrom: new Date(readFrom).toISOString(), readTo: new Date(readTo).toISOString() },
      ...totals,
      missing,
      phantom,
      duplicates,
      inversions,
      groups,
      clean: missing.count === 0 && phantom.count === 0,
      elapsedMs: Date.now() - started,
    };
  } finally {
    // Closed, not returned to the pool: its temporary tables and session settings
    // (temp_buffers cannot be reset once used) end with it.
    client.release(true);
  }
}

/**
 * The topics the window's events went to, through the relay's router, plus those of the
 * `--types` patterns (where a phantom of those types would be). Types that are not valid
 * event types have no topic (the relay dead-letters them) and are skipped.
 */
async function auditedTopics(client: pg.ClientBase, router: TopicRouter, patterns: readonly string[]): Promise<string[]> {
  const { rows } = await client.query('SELECT DISTINCT event_type FROM audit_log');
  const topics = new Set<string>(patterns.length > 0 ? router.topicsFor(patterns).topics : []);
  for (const { event_type } of rows) {
    try {
      topics.add(router.topicFor(event_type));
    } catch {
      // No topic for an invalid type: the relay could not have published it either.
    }
  }
  return [...topics].sort();
}

async function groupReports(client: pg.ClientBase, groupIds: readonly string[], limit: number): Promise<GroupReport[]> {
  const withInbox = await groupsWithInbox(client, groupIds);
  const { rows } = await client.query('SELECT group_id, count(*)::int AS n FROM audit_committed GROUP BY group_id');
  const committed = new Map(rows.map((r) => [r.group_id as string, r.n as number]));
  const reports: GroupReport[] = [];
  for (const groupId of groupIds) {
    const evidence = withInbox.has(groupId) ? 'inbox' : 'none';
    reports.push({
      groupId,
      evidence,
      committedPartitions: committed.get(groupId) ?? 0,
      ...(await groupTotals(client, groupId)),
      gaps: evidence === 'inbox' ? await groupGaps(client, groupId, limit) : null,
    });
  }
  return reports;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the audit keeps of a record: ids, tenant, type and time from the CloudEvents headers; no payload. */
function kafkaRow(record: RangeRecord): KafkaRow {
  const h = record.headers;
  const ceId = h[HEADER.id] || null;
  const ceTime = h[HEADER.time];
  const time = ceTime ? parseRfc3339(ceTime) : undefined;
  return {
    ceId,
    ceUuid: ceId !== null && UUID.test(ceId) ? ceId.toLowerCase() : null,
    tenantId: h[HEADER.tenantId] || null,
    eventType: h[HEADER.type] || null,
    replayId: h[HEADER.replayId] || null,
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    eventTime: time ?? new Date(record.timestamp),
  };
}
