import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { encodeEvent, TopicRouter, uuidv7, type StoredEvent } from '@eventbus/core';
import { EventConsumer } from '@eventbus/consumer';
import { uniqueName, waitFor } from '@eventbus/dev-services';
import { KafkaPublisher } from '@eventbus/kafka';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay } from '@eventbus/relay';
import { cliFixture, createTopics, runCli, runCliInProcess } from './cli-fixture.js';

// `eventbus audit` against a real pipeline: EventWriter → OutboxRelay → Kafka → an
// EventConsumer group that records what it handled in the inbox (processOnce). Each test
// plants one kind of discrepancy for a tenant of its own and audits that tenant (--tenant),
// so the tests share the topics without seeing each other's plants.

let f: Awaited<ReturnType<typeof cliFixture>>;
let prefix: string;
let env: Record<string, string>;
let relay: OutboxRelay;
let consumer: EventConsumer;
let publisher: KafkaPublisher;
let admin: Admin;
let writer: EventWriter;
let groupId: string;
const TYPES = ['product.created', 'product.updated', 'order.placed'];

beforeAll(async () => {
  f = await cliFixture('cli-audit');
  prefix = f.prefix();
  env = f.env(prefix);
  groupId = uniqueName('audited-');
  await createTopics(f.brokers, [
    { topic: `${prefix}product`, numPartitions: 3 },
    { topic: `${prefix}order`, numPartitions: 3 },
  ]);
  writer = new EventWriter(drizzle(f.pool));
  relay = f.track(new OutboxRelay({ connectionString: f.database.url, brokers: f.brokers, routing: { prefix }, pollIntervalMs: 100 }));
  await relay.start();
  consumer = f.track(new EventConsumer({ brokers: f.brokers, groupId, routing: { prefix }, fromBeginning: true, connectionString: f.database.url }));
  consumer.subscribe({ eventTypes: ['product.*', 'order.*'], handler: async (_event, ctx) => void (await ctx.processOnce(async () => undefined)) });
  await consumer.start();
  publisher = new KafkaPublisher({ brokers: f.brokers });
  await publisher.connect();
  admin = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
}, 60_000);
afterAll(async () => {
  await admin?.disconnect();
  await publisher?.disconnect();
  await f?.close();
});

/** Writes `count` events of `tenantId` through the EventWriter and waits until the relay published them. */
async function writeAndRelay(tenantId: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++)
    ids.push((await writer.writeEventWithOutbox({ tenantId, eventKey: `${tenantId}-${i}`, eventType: TYPES[i % 3]!, payload: { i } })).eventLogId);
  await waitFor(async () => Number((await f.pool.query('SELECT count(*) FROM eventbus.outbox')).rows[0].count) === 0, {
    timeoutMs: 20_000,
    message: 'the relay drains the outbox',
  });
  return ids;
}

/** The stored event as the relay encodes it, for producing copies and plants straight to the topic. */
async function storedEvent(id: string): Promise<StoredEvent> {
  const { rows } = await f.pool.query('SELECT *, id::text AS id, payload::text AS payload_json FROM eventbus.event_log WHERE id = $1', [id]);
  const r = rows[0];
  return {
    id: r.id,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    eventKey: r.event_key,
    eventType: r.event_type,
    version: r.event_version,
    payloadJson: r.payload_json,
    correlationId: r.correlation_id,
    causationId: r.causation_id,
    createdAt: r.created_at,
    traceparent: null,
    tracestate: null,
  };
}

async function produce(events: StoredEvent[]): Promise<void> {
  const router = new TopicRouter({ prefix });
  await publisher.publish(events.map((e) => ({ topic: router.topicFor(e.eventType), ...encodeEvent(e) })));
}

/** Inserts an EventLog row with no outbox row: the relay never sees it. */
async function insertLogOnly(tenantId: string, eventType: string, createdAt: Date): Promise<string> {
  const id = uuidv7();
  await f.pool.query(
    `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at) VALUES ($1::uuid, $2, $3, $4, '{}', $1::text, $5)`,
    [id, tenantId, `${tenantId}-${id}`, eventType, createdAt],
  );
  return id;
}

/** Waits until the group's committed offsets reached the end of every partition of both topics. */
async function groupCaughtUp(): Promise<void> {
  await waitFor(
    async () => {
      for (const topic of [`${prefix}product`, `${prefix}order`]) {
        const high = await admin.fetchTopicOffsets(topic);
        const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
        for (const p of high) {
          const c = committed!.partitions.find((x) => x.partition === p.partition);
          if (Number(p.high) > 0 && Number(c?.offset ?? -1) < Number(p.high)) return false;
        }
      }
      return true;
    },
    { timeoutMs: 30_000, message: 'the consumer group commits past every record' },
  );
}

const windowArgs = (from: Date, to: Date) => ['--from', from.toISOString(), '--to', to.toISOString()];

describe('eventbus audit (real Postgres and Kafka)', () => {
  it('reports a clean pipeline as clean (exit 0), with the group having handled every event', async () => {
    const tenant = uniqueName('clean-');
    const from = new Date(Date.now() - 1000);
    const ids = await writeAndRelay(tenant, 30);
    await groupCaughtUp();
    await waitFor(async () => Number((await f.pool.query('SELECT count(*) FROM eventbus.inbox WHERE group_id = $1', [groupId])).rows[0].count) >= 30, {
      timeoutMs: 20_000,
      message: 'the group handled all 30',
    });
    const to = new Date(Date.now() + 1000);
    const run = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant, '--group', groupId, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report).toMatchObject({
      events: 30,
      onKafka: 30,
      pending: 0,
      relayDeadLettered: 0,
      replayed: 0,
      clean: true,
      topics: [`${prefix}order`, `${prefix}product`],
      missing: { count: 0, samples: [] },
      phantom: { count: 0, samples: [] },
      duplicates: { count: 0, samples: [] },
      inversions: { count: 0, samples: [] },
      groups: [{ groupId, evidence: 'inbox', passed: 30, handled: 30, deadLettered: 0, gaps: { count: 0, samples: [] } }],
      window: { from: from.toISOString(), to: to.toISOString(), tenantId: tenant, eventTypes: [], marginMs: 900_000 },
    });
    expect(report.kafka.records).toBeGreaterThanOrEqual(30);
    expect(ids).toHaveLength(30);
    // Progress on stderr, the report on stdout.
    expect(run.stderr).toMatch(/event log: 30 event\(s\) in the window/);

    const text = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/event log: 30 event\(s\); on Kafka 30/);
    expect(text.stdout).toMatch(/missing .*: 0\n/);
    expect(text.stdout).toMatch(/clean: nothing missing or phantom/);
  }, 90_000);

  it('finds an event in the log that was never published (missing, exit 3)', async () => {
    const tenant = uniqueName('missing-');
    const from = new Date(Date.now() - 1000);
    await writeAndRelay(tenant, 6);
    // The EventWriter's log-only write: in the EventLog, never queued for the relay.
    const planted = await writer.writeEvent({ tenantId: tenant, eventKey: `${tenant}-log-only`, eventType: 'order.placed', payload: {} });
    const to = new Date(Date.now() + 1000);
    const run = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant, '--json'], env);
    expect(run.code, run.stderr).toBe(3);
    const report = run.json();
    expect(report).toMatchObject({ events: 7, onKafka: 6, clean: false, phantom: { count: 0 } });
    expect(report.missing).toEqual({ count: 1, samples: [expect.objectContaining({ eventId: planted, tenantId: tenant, eventType: 'order.placed' })] });
    const text = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant], env);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain(planted);
    expect(text.stdout).toMatch(/NOT CLEAN: 1 missing, 0 phantom/);
  }, 60_000);

  it('does not count an event still waiting in the outbox as missing', async () => {
    const tenant = uniqueName('pending-');
    const from = new Date(Date.now() - 1000);
    // In the outbox with a retry time far ahead: the relay leaves it there.
    const id = await insertLogOnly(tenant, 'product.created', new Date());
    await f.pool.query(`INSERT INTO eventbus.outbox (event_id, shard, next_attempt_at) VALUES ($1, 0, now() + interval '1 day')`, [id]);
    const run = await runCli(['audit', ...windowArgs(from, new Date(Date.now() + 1000)), '--tenant', tenant, '--json'], env);
    await f.pool.query('DELETE FROM eventbus.outbox WHERE event_id = $1', [id]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ events: 1, onKafka: 0, pending: 1, missing: { count: 0 }, clean: true });
  }, 60_000);

  it('finds a record on Kafka with an unknown ce_id (phantom, exit 3)', async () => {
    const tenant = uniqueName('phantom-');
    const from = new Date(Date.now() - 1000);
    const [real] = await writeAndRelay(tenant, 3);
    const phantom = { ...(await storedEvent(real!)), id: uuidv7(), createdAt: new Date() };
    await produce([phantom]);
    const run = await runCli(['audit', ...windowArgs(from, new Date(Date.now() + 1000)), '--tenant', tenant, '--json'], env);
    expect(run.code, run.stderr).toBe(3);
    const report = run.json();
    expect(report).toMatchObject({ events: 3, missing: { count: 0 }, clean: false });
    expect(report.phantom).toEqual({
      count: 1,
      samples: [expect.objectContaining({ ceId: phantom.id, tenantId: tenant, topic: expect.stringContaining(prefix) })],
    });
  }, 60_000);

  it('finds the same event on Kafka twice (duplicate, exit 0) and tells replayed copies apart', async () => {
    const tenant = uniqueName('dup-');
    const from = new Date(Date.now() - 1000);
    const ids = await writeAndRelay(tenant, 4);
    await produce([await storedEvent(ids[1]!)]);
    const to = new Date(Date.now() + 1000);
    // A replay's copy (ce_replayid) is expected, not a duplicate.
    const replay = await runCli(['replay', '--tenant', tenant, '--after', ids[2]!, '--yes', '--json'], env);
    expect(replay.code, replay.stderr).toBe(0);
    const run = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report).toMatchObject({ events: 4, clean: true, replayed: 1, inversions: { count: 0 }, missing: { count: 0 }, phantom: { count: 0 } });
    expect(report.duplicates.count).toBe(1);
    expect(report.duplicates.samples[0]).toMatchObject({ eventId: ids[1], copies: 2 });
    expect(report.duplicates.samples[0].positions).toHaveLength(2);
  }, 60_000);

  it('finds one tenant’s events on Kafka in the opposite of the log’s order (inversion)', async () => {
    const tenant = uniqueName('order-');
    const from = new Date(Date.now() - 1000);
    const t = Date.now();
    const first = await storedEvent(await insertLogOnly(tenant, 'product.created', new Date(t)));
    const second = await storedEvent(await insertLogOnly(tenant, 'product.updated', new Date(t + 5)));
    const third = await storedEvent(await insertLogOnly(tenant, 'product.updated', new Date(t + 10)));
    await produce([first, third, second]);
    const run = await runCli(['audit', ...windowArgs(from, new Date(Date.now() + 1000)), '--tenant', tenant, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report).toMatchObject({ events: 3, onKafka: 3, clean: true, duplicates: { count: 0 } });
    expect(report.inversions).toEqual({
      count: 1,
      samples: [expect.objectContaining({ tenantId: tenant, eventId: second.id, afterEventId: third.id, topic: `${prefix}product` })],
    });
  }, 60_000);

  it('finds an event the group committed past but neither handled nor dead-lettered (group gap); a group without inbox rows is "unknown"', async () => {
    const tenant = uniqueName('gap-');
    const from = new Date(Date.now() - 1000);
    const ids = await writeAndRelay(tenant, 9);
    await groupCaughtUp();
    await waitFor(async () => Number((await f.pool.query('SELECT count(*) FROM eventbus.inbox WHERE event_id = ANY ($1)', [ids])).rows[0].count) === 9, {
      timeoutMs: 20_000,
      message: 'the group handled all 9',
    });
    const to = new Date(Date.now() + 1000);
    // Plant: the handled record of one event is gone; another is dead-lettered for the group, which accounts for it.
    await f.pool.query('DELETE FROM eventbus.inbox WHERE group_id = $1 AND event_id = ANY ($2)', [groupId, [ids[4], ids[6]]]);
    await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ($1, 'consumer', $2, $3, $4, 'Error', 'x', 1, now(), now())`,
      [`consumer:${groupId}:${ids[6]}`, groupId, ids[6], tenant],
    );
    // A second subscription of the group that handled one of them: still one handled event.
    await f.pool.query(`INSERT INTO eventbus.inbox (group_id, event_id, subscription) VALUES ($1, $2, 'second')`, [groupId, ids[0]]);
    const run = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant, '--group', `${groupId},never-ran`, '--json'], env);
    expect(run.code, run.stderr).toBe(0);
    const [group, unknown] = run.json().groups;
    expect(group).toMatchObject({ groupId, evidence: 'inbox', passed: 9, handled: 7, deadLettered: 1 });
    expect(group.gaps).toEqual({ count: 1, samples: [expect.objectContaining({ eventId: ids[4], tenantId: tenant })] });
    expect(unknown).toMatchObject({ groupId: 'never-ran', evidence: 'none', committedPartitions: 0, passed: 0, gaps: null });
    const text = await runCli(['audit', ...windowArgs(from, to), '--tenant', tenant, '--group', `${groupId},never-ran`], env);
    expect(text.stdout).toContain(`passed but neither handled nor dead-lettered: 1\n    ${ids[4]}`);
    expect(text.stdout).toMatch(/group never-ran: .*\n {2}gaps: unknown/);
  }, 90_000);

  it('refuses bad input with exit 2 before connecting', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['audit', '--from', '2026-01-02', '--to', '2026-01-01'], /--from 2026-01-02 is after --to 2026-01-01/],
      [['audit', '--from', 'yesterday', '--to', '2026-01-01'], /--from "yesterday" is not a date/],
      [['audit', '--from', '2026-01-01'], /--from and --to are required/],
      [['audit', '--from', '2026-01-01', '--to', '2026-01-02', '--margin', '5 minutes'], /--margin "5 minutes" is invalid/],
      [['audit', '--from', '2026-01-01', '--to', '2026-01-02', '--types', 'product.**'], /eventTypes/],
    ];
    // An unreachable database: a usage error must come first.
    const offline = { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', KAFKA_BROKERS: '127.0.0.1:1' };
    for (const [args, message] of cases) {
      const run = await runCliInProcess(args, offline);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toMatch(message);
    }
  });
});
