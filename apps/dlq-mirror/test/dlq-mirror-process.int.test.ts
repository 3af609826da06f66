import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { dlqTopicFor, encodeDlqHeaders, retryTopicFor } from '@eventbus/core';
import { startAppProcess, uniqueName, waitFor, type AppProcess, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

let database: TestDatabase;
let pool: pg.Pool;
let producer: Producer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  database = await testDatabase('dlqmirrorapp');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  pool.on('error', () => undefined);
  producer = new Kafka({ brokers: testServices().kafkaBrokers, clientId: 'dlq-mirror-test', logLevel: logLevel.NOTHING }).producer({
    allowAutoTopicCreation: false,
  });
  await producer.connect();
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await producer?.disconnect();
  await pool?.end();
  await database?.drop();
});

type RunningMirror = AppProcess;

function startMirrorProcess(env: Record<string, string>): RunningMirror {
  return startAppProcess(MAIN, env, children);
}

async function readyPort(mirror: RunningMirror): Promise<string> {
  return waitFor(() => /"port":(\d+)/.exec(mirror.output())?.[1], { timeoutMs: 30_000, message: `mirror ready; output so far:\n${mirror.output()}` });
}

async function mirroredTotal(port: string, series = 'eventbus_dlq_mirror_mirrored_total'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${series} (\\d+)$`, 'm').exec(text)?.[1]);
}

/** A DLQ record as an EventConsumer of `groupId` writes it, for the original at `offset`. */
function dlqRecord(prefix: string, groupId: string, offset: string, eventId: string) {
  const now = Date.now();
  const headers = encodeDlqHeaders(
    { ce_id: eventId, ce_type: 'order.placed', ce_tenantid: 'tenant-a', ce_eventkey: `k-${offset}` },
    {
      origin: { topic: `${prefix}order`, partition: 0, offset, timestamp: now - 1000 },
      groupId,
      errorClass: 'OverLimitError',
      errorMessage: `order ${offset} is over the limit`,
      attempts: 3,
      firstFailureAt: now - 900,
      lastFailureAt: now - 100,
      retryTopic: retryTopicFor(prefix, groupId),
    },
  );
  // One key for every record: one partition, so the records are read in the order sent.
  return { key: 'tenant-a', value: JSON.stringify({ offset }), headers };
}

const rowsFor = async (groupId: string) =>
  (await pool.query('SELECT dedupe_key, event_id, error_class, attempts, status FROM eventbus.dead_letters WHERE group_id = $1 ORDER BY id', [groupId])).rows;

describe('apps/dlq-mirror as a process', () => {
  it('fails fast with a message naming each bad or missing variable', async () => {
    const mirror = startMirrorProcess({ KAFKA_BROKERS: 'kafka', DLQ_MIRROR_TOPIC_PARTITIONS: '0', DLQ_MIRROR_MIGRATE: 'maybe' });
    expect(await mirror.exited).toBe(2);
    const out = mirror.output();
    expect(out).toMatch(/DATABASE_URL is missing: expected Postgres primary/);
    expect(out).toMatch(/KAFKA_BROKERS entry "kafka" is invalid: expected host:port/);
    expect(out).toMatch(/DLQ_MIRROR_TOPIC_PARTITIONS="0" is invalid: expected an integer from 1 to 1000/);
    expect(out).toMatch(/DLQ_MIRROR_MIGRATE="maybe" is invalid: expected true or false/);
  });

  it('fails fast when the database cannot be reached, without leaking the password', async () => {
    const mirror = startMirrorProcess({
      DATABASE_URL: 'postgres://eventbus:s3cret-pw@127.0.0.1:1/nowhere',
      KAFKA_BROKERS: testServices().kafkaBrokers.join(','),
    });
    expect(await mirror.exited).toBe(4);
    expect(mirror.output()).toMatch(/dlq mirror cannot start: cannot connect to Postgres at postgres:\/\/eventbus:\*\*\*@/);
    expect(mirror.output()).not.toContain('s3cret-pw');
  });

  it('mirrors a DLQ record once however often it is delivered, resumes after its committed offsets, exits 0 on SIGTERM', async () => {
    const prefix = `${uniqueName('dlqapp.')}.`;
    const groupId = uniqueName('shipping-');
    const topic = dlqTopicFor(prefix, groupId);
    const env = {
      DATABASE_URL: database.url,
      KAFKA_BROKERS: testServices().kafkaBrokers.join(','),
      EVENTBUS_TOPIC_PREFIX: prefix,
      DLQ_MIRROR_GROUP_ID: uniqueName('mirror-'),
      DLQ_MIRROR_TOPIC_PARTITIONS: '2',
    };

    // The group is listed, so the mirror creates its DLQ topic itself.
    const first = startMirrorProcess({ ...env, DLQ_MIRROR_GROUPS: groupId });
    const port = await readyPort(first);
    expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
    const ready = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200 ? res.json() : undefined;
      },
      { timeoutMs: 20_000, message: '/readyz 200' },
    );
    expect(ready).toMatchObject({ ready: true, checks: { postgres: true, kafka: true, consuming: true } });

    const record = dlqRecord(prefix, groupId, '41', 'evt-41');
    await producer.send({ topic, acks: -1, messages: [record] });
    await waitFor(async () => (await rowsFor(groupId)).length === 1, { timeoutMs: 20_000, message: 'dead_letters row' });
    expect(await rowsFor(groupId)).toEqual([
      { dedupe_key: `consumer:${groupId}:${prefix}order:0:41`, event_id: 'evt-41', error_class: 'OverLimitError', attempts: 3, status: 'pending' },
    ]);

    // The same record delivered again (a producer retry, a re-sent DLQ message): no second row.
    await producer.send({ topic, acks: -1, messages: [record] });
    await waitFor(async () => (await mirroredTotal(port)) === 2, { timeoutMs: 20_000, message: 'second delivery mirrored' });
    expect(await rowsFor(groupId)).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toContain(`eventbus_dlq_size{stage="consumer",group="${groupId}"} 1`);
    expect(metrics).toMatch(/^eventbus_dlq_oldest_age_seconds \d/m);
    expect(metrics).toContain('eventbus_dlq_mirror_dlq_query_failures_total 0');

    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/"msg":"mirror stopped, offsets committed"/);
    expect(first.output()).toMatch(/"service":"eventbus-dlq-mirror"/);

    // Same mirror group, subscribing by pattern this time: it resumes after the committed
    // offsets (committed after each batch, and at the latest by the SIGTERM shutdown). Had
    // they not been committed, it would re-read both records before the new one (same
    // partition, read in order), and its counter would reach 3, not 1.
    await producer.send({ topic, acks: -1, messages: [dlqRecord(prefix, groupId, '42', 'evt-42')] });
    const second = startMirrorProcess(env);
    const port2 = await readyPort(second);
    await waitFor(async () => (await rowsFor(groupId)).length === 2, { timeoutMs: 30_000, message: 'the record sent while the mirror was down' });
    expect(await mirroredTotal(port2)).toBe(1);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    // A new mirror group re-reads the whole DLQ topic: all three deliveries are below the
    // position the mirror keeps in Postgres, so none is copied again; still two rows.
    const replay = startMirrorProcess({ ...env, DLQ_MIRROR_GROUP_ID: uniqueName('mirror-replay-') });
    const port3 = await readyPort(replay);
    await waitFor(async () => (await mirroredTotal(port3, 'eventbus_dlq_mirror_seen_before_total')) === 3, {
      timeoutMs: 30_000,
      message: 'replay of the DLQ topic',
    });
    expect(await mirroredTotal(port3)).toBe(0);
    expect((await rowsFor(groupId)).map((r) => r.event_id)).toEqual(['evt-41', 'evt-42']);
    replay.child.kill('SIGTERM');
    expect(await replay.exited).toBe(0);
  });
  it('skips a DLQ record Postgres cannot store after DLQ_MIRROR_UNSTORABLE_ATTEMPTS tries, counts and logs it, and mirrors the records behind it', async () => {
    const prefix = `${uniqueName('dlqapp.')}.`;
    const groupId = uniqueName('billing-');
    const topic = dlqTopicFor(prefix, groupId);
    const env = {
      DATABASE_URL: database.url,
      KAFKA_BROKERS: testServices().kafkaBrokers.join(','),
      EVENTBUS_TOPIC_PREFIX: prefix,
      DLQ_MIRROR_GROUP_ID: uniqueName('mirror-'),
      DLQ_MIRROR_GROUPS: groupId,
      DLQ_MIRROR_TOPIC_PARTITIONS: '1',
      DLQ_MIRROR_UNSTORABLE_ATTEMPTS: '2',
    };
    const mirror = startMirrorProcess(env);
    const port = await readyPort(mirror);
    // Genuinely unstorable: the original partition is beyond dead_letters.partition (a Postgres
    // integer), as a record that another producer wrote to the DLQ topic may say. A NUL in the
    // key and in a header too: those alone no longer stop anything.
    const poison = dlqRecord(prefix, groupId, '1', 'evt-poison');
    poison.headers['eventbus-dlq-original-partition'] = '4294967296';
    const withNul = { ...dlqRecord(prefix, groupId, '2', 'evt-nul'), key: Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x41]) };
    withNul.headers['x-nul'] = Buffer.from([0x61, 0x00, 0x62]);
    await producer.send({ topic, acks: -1, messages: [poison, withNul, dlqRecord(prefix, groupId, '3', 'evt-after')] });

    await waitFor(async () => (await rowsFor(groupId)).length === 2, {
      timeoutMs: 30_000,
      message: `the records behind the unstorable one; output:\n${mirror.output()}`,
    });
    expect((await rowsFor(groupId)).map((r) => r.event_id)).toEqual(['evt-nul', 'evt-after']);
    const nul = (await pool.query('SELECT message_key_bytes FROM eventbus.dead_letters WHERE event_id = $1', ['evt-nul'])).rows[0];
    expect(nul.message_key_bytes.toString('hex')).toBe('00fffe0041');
    expect(await mirroredTotal(port, 'eventbus_dlq_mirror_unstorable_total')).toBe(1);
    expect(await mirroredTotal(port)).toBe(2);
    const skipped = (
      await pool.query('SELECT partition, "offset"::text, attempts, error_code, error_message FROM eventbus.dead_letters_unstorable WHERE topic = $1', [topic])
    ).rows;
    expect(skipped).toEqual([{ partition: 0, offset: '0', attempts: 2, error_code: '22003', error_message: expect.stringContaining('out of range') }]);
    const logged = mirror
      .output()
      .split('\n')
      .filter((l) => l.includes('dead_letters_unstorable'))
      .map((l) => JSON.parse(l));
    expect(logged).toEqual([expect.objectContaining({ level: 50, topic, partition: 0, offset: '0', attempts: 2, code: '22003' })]);
    mirror.child.kill('SIGTERM');
    expect(await mirror.exited).toBe(0);
  });
});
