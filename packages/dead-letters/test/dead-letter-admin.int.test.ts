import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { uuidv7 } from '@eventbus/core';
import { COPY_TOPIC_HEADROOM_BYTES } from '@eventbus/kafka';
import { createTopics } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { shardForTenant } from '@eventbus/schema';
import { discardDeadLetter, listDeadLetters, redriveDeadLetter } from '../src/index.js';
import { deadLettersFixture } from './dead-letters-fixture.js';

let f: Awaited<ReturnType<typeof deadLettersFixture>>;
beforeAll(async () => {
  f = await deadLettersFixture('dead-letter-admin');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const deadLetter = async (where: string, value: string) => (await f.pool.query(`SELECT * FROM eventbus.dead_letters WHERE ${where} = $1`, [value])).rows;

// Re-drive and discard of rows already in the table. The consumer-stage round trip (a
// consumer dead-letters, the mirror copies, a re-drive reaches the group again) is in
// packages/consumer/test/dead-letters.int.test.ts: it needs an EventConsumer.
describe('dead letters: re-drive, discard (real Kafka, real Postgres)', () => {
  it('re-drives a relay dead letter into the outbox in its shard, once', async () => {
    const tenantId = `tenant-${uuidv7()}`;
    const eventId = await new EventWriter(f.db).writeEvent({ tenantId, eventKey: 'k-1', eventType: 'order.placed', payload: { n: 1 } });
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, event_id, tenant_id, event_type, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ('relay:' || $1, 'relay', $1, $2, 'order.placed', 'PublishError', 'MESSAGE_TOO_LARGE', 6, now(), now()) RETURNING id`,
      [eventId, tenantId],
    );
    const id = rows[0].id as string;
    expect(await redriveDeadLetter(f.pool, f.publisher, id)).toMatchObject({ outcome: 'redriven', stage: 'relay' });
    expect(await redriveDeadLetter(f.pool, f.publisher, id)).toMatchObject({ outcome: 'already_redriven' });
    const outbox = await f.pool.query('SELECT shard, attempts FROM eventbus.outbox WHERE event_id = $1', [eventId]);
    expect(outbox.rows).toEqual([{ shard: shardForTenant(tenantId), attempts: 0 }]);
    expect((await deadLetter('id', id))[0]).toMatchObject({ status: 'redriven' });
  });

  it('discards a pending dead letter and then refuses to re-drive or discard it again', async () => {
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, topic, partition, "offset", error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ($1, 'consumer', 'g', 't', 0, '5', 'Error', 'x', 1, now(), now()) RETURNING id`,
      [`consumer:g:t:0:${uuidv7()}`],
    );
    const id = rows[0].id as string;
    expect(await discardDeadLetter(f.pool, id)).toMatchObject({ outcome: 'discarded' });
    expect(await discardDeadLetter(f.pool, id)).toMatchObject({ outcome: 'already_discarded' });
    expect(await redriveDeadLetter(f.pool, f.publisher, id)).toMatchObject({ outcome: 'already_discarded' });
    expect(await discardDeadLetter(f.pool, '999999999')).toMatchObject({ outcome: 'not_found' });
    expect((await deadLetter('id', id))[0]).toMatchObject({ status: 'discarded' });
  });
});

describe('dead letters: the retry topic a re-drive creates', () => {
  it('is sized as the consumer sizes it (the original topic limit plus headroom), not at the broker default', async () => {
    const prefix = f.prefix();
    const group = f.group('sized');
    const eventTopic = `${prefix}order`;
    const retryTopic = `${prefix}retry.${group}`;
    const eventLimit = 2_000_000;
    await createTopics(f.brokers, [{ topic: eventTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(eventLimit) }] }]);
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, topic, partition, "offset",
         message_key, value, headers, error_class, error_message, attempts, first_failed_at, last_failed_at)
       VALUES ($1, 'consumer', $2, 'e-1', 'acme', 'order.placed', $3, 0, 0, 'acme', '{}', $4::jsonb, 'Error', 'x', 6, now(), now())
       RETURNING id::text`,
      [`consumer:${group}:${eventTopic}:0:0`, group, eventTopic, JSON.stringify({ ce_id: 'e-1', 'eventbus-dlq-retry-topic': retryTopic })],
    );
    expect(await redriveDeadLetter(f.pool, f.publisher, rows[0].id)).toMatchObject({ outcome: 'redriven', stage: 'consumer' });
    const admin = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2 /* ConfigResourceTypes.TOPIC */, name: retryTopic, configNames: ['max.message.bytes'] }],
      });
      expect(Number(resources[0]!.configEntries.find((e) => e.configName === 'max.message.bytes')!.configValue)).toBe(eventLimit + COPY_TOPIC_HEADROOM_BYTES);
      // With the publisher's partition count, as a topic it creates on send would have.
      expect(await admin.fetchTopicOffsets(retryTopic)).toHaveLength(3);
    } finally {
      await admin.disconnect();
    }
  });
});

describe('dead letters: listing by time', () => {
  it('keeps the rows dead-lettered in [since, until), each bound alone or both', async () => {
    const group = f.group('timed');
    const at = ['2026-03-01T10:00:00Z', '2026-03-01T11:00:00Z', '2026-03-01T12:00:00Z'];
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, topic, partition, "offset", error_class, error_message, attempts, first_failed_at, last_failed_at, created_at)
       SELECT 'consumer:' || $1 || ':t:0:' || n, 'consumer', $1, 't', 0, n::text, 'Error', 'x', 1, at, at, at
       FROM unnest($2::timestamptz[]) WITH ORDINALITY AS u(at, n) RETURNING id`,
      [group, at],
    );
    const [ten, eleven, noon] = rows.map((r) => r.id as string);
    const list = async (range: { since?: string; until?: string }) =>
      (
        await listDeadLetters(f.pool, {
          status: 'pending',
          groupId: group,
          limit: 10,
          ...(range.since ? { since: new Date(range.since) } : {}),
          ...(range.until ? { until: new Date(range.until) } : {}),
        })
      ).map((r) => r.id);
    expect(await list({})).toEqual([noon, eleven, ten]);
    // since is inclusive, until exclusive: adjacent ranges share no row.
    expect(await list({ since: at[1], until: at[2] })).toEqual([eleven]);
    expect(await list({ since: at[0], until: at[1] })).toEqual([ten]);
    expect(await list({ until: at[1] })).toEqual([ten]);
    expect(await list({ since: at[1] })).toEqual([noon, eleven]);
    expect(await list({ since: '2026-03-01T10:30:00Z', until: '2026-03-01T10:45:00Z' })).toEqual([]);
  });
});
