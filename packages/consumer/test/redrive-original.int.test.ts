import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dlqTopicFor, isEventBusError, NonRetriableError, retryTopicFor } from '@eventbus/core';
import { redriveDeadLetter } from '@eventbus/dead-letters';
import { waitFor } from '@eventbus/dev-services';
import { Kafka, logLevel } from 'kafkajs';
import { consumerFixture, recordingLogger } from './consumer-fixture.js';

// A dead letter whose DLQ record holds no value (its copy was too large for the DLQ topic) is
// re-driven from the original record, read from its topic at the row's coordinates. These tests
// check the refusals: an original that retention removed, another record at those coordinates,
// and a read that cannot finish in time. copy-limits.int.test.ts holds the re-drives that succeed.

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('redrive-original');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const SMALL_LIMIT = 16 * 1024;
const LARGE_PAYLOAD = { blob: 'x'.repeat(40_000) };

/**
 * A group whose DLQ topic refuses the copy of a large failing event: the event sits at offset 0
 * of its one-partition topic, a healthy one at offset 1, and the mirror's row of the large one
 * holds no value. Returns that row and what a test needs to change the topic under it.
 */
async function deadLetterWithoutValue() {
  const prefix = f.prefix();
  const groupId = f.group('no-value');
  const eventTopic = `${prefix}order`;
  await f.createTopics([{ topic: eventTopic }, { topic: dlqTopicFor(prefix, groupId), maxMessageBytes: SMALL_LIMIT }]);
  const handled: string[] = [];
  await f.consumer({ groupId, routing: { prefix }, logger: recordingLogger().logger }, [
    {
      eventTypes: ['order.placed'],
      name: 'billing',
      handler: async (event) => {
        if ((event.payload as { fail?: boolean }).fail) throw new NonRetriableError('cannot bill this order');
        handled.push(event.id);
      },
    },
  ]);
  const [large, healthy] = await f.publish(prefix, [
    { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true, ...LARGE_PAYLOAD } },
    { tenantId: 'acme', eventType: 'order.placed', payload: {} },
  ]);
  await waitFor(() => handled.includes(healthy!) || undefined, { timeoutMs: 20_000, message: 'the healthy event after the large one' });
  await f.mirror({ routing: { prefix }, groups: [groupId] });
  const row = await waitFor(async () => (await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE event_id = $1', [large])).rows[0], {
    timeoutMs: 15_000,
    message: 'the dead_letters row of the large event',
  });
  expect(row).toMatchObject({ topic: eventTopic, partition: 0, offset: '0', value: null, value_bytes: null });
  expect(row.headers['eventbus-dlq-truncated']).toBeDefined();
  return { row, prefix, eventTopic, retryTopic: retryTopicFor(prefix, groupId), large: large!, healthy: healthy! };
}

async function statusOf(id: string): Promise<string> {
  return (await f.pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [id])).rows[0].status;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('re-drive of a dead letter without the value (real Kafka)', () => {
  it('refuses with ORIGINAL_NOT_RETAINED, saying what to do, once retention removed the original; the row stays pending', { timeout: 60_000 }, async () => {
    const { row, eventTopic, retryTopic } = await deadLetterWithoutValue();
    // What retention does to an old segment: the partition now starts after the original.
    await f.deleteRecordsBefore(eventTopic, 0, '1');
    const error = await rejection(redriveDeadLetter(f.pool, f.publisher, row.id));
    expect(isEventBusError(error, 'ORIGINAL_NOT_RETAINED'), String(error)).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain(`dead letter ${row.id} holds no value and its original is gone: ${eventTopic} partition 0 offset 0 is not retained`);
    expect(message).toContain("the partition's first retained offset is 1");
    // The fixture publishes straight to Kafka: the event is in no EventLog, and the advice says so instead of naming a replay that sends nothing.
    expect(message).toContain(
      `This database's EventLog has no event ${row.event_id} (pruned by retention, or written through another database: replay it there with eventbus replay --tenant acme --group ${row.group_id} --event-id ${row.event_id})`,
    );
    expect(await statusOf(row.id)).toBe('pending');
    // Nothing reached the group's retry topic.
    expect(await f.messageCount(retryTopic)).toBe(0);
  });

  it('refuses with ORIGINAL_MISMATCH when the record at the coordinates is another event; the row stays pending', { timeout: 60_000 }, async () => {
    const { row, eventTopic, retryTopic, prefix } = await deadLetterWithoutValue();
    // The topic deleted and created again: offset 0 now holds another event.
    await f.reset();
    await f.recreateTopic(eventTopic);
    const [other] = await f.publish(prefix, [{ tenantId: 'acme', eventType: 'order.placed', payload: { other: true } }]);
    const error = await rejection(redriveDeadLetter(f.pool, f.publisher, row.id));
    expect(isEventBusError(error, 'ORIGINAL_MISMATCH'), String(error)).toBe(true);
    expect((error as Error).message).toContain(`${eventTopic} partition 0 offset 0 is event ${other} written at `);
    expect((error as Error).message).toContain(`not event ${row.event_id} written at `);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ expectedEventId: row.event_id, foundEventId: other });
    expect(await statusOf(row.id)).toBe('pending');
    expect(await f.messageCount(retryTopic)).toBe(0);
  });

  it('refuses with ORIGINAL_MISMATCH a row without an event id when the record at the coordinates is an event (the topic created again)', {
    timeout: 60_000,
  }, async () => {
    const { row, eventTopic, retryTopic, prefix } = await deadLetterWithoutValue();
    // As the mirror stores the record of an undecodable message: no event id to compare.
    await f.pool.query('UPDATE eventbus.dead_letters SET event_id = NULL WHERE id = $1', [row.id]);
    await f.reset();
    await f.recreateTopic(eventTopic);
    const [other] = await f.publish(prefix, [{ tenantId: 'acme', eventType: 'order.placed', payload: { other: true } }]);
    const error = await rejection(redriveDeadLetter(f.pool, f.publisher, row.id));
    expect(isEventBusError(error, 'ORIGINAL_MISMATCH'), String(error)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ expectedEventId: null, foundEventId: other });
    expect(await statusOf(row.id)).toBe('pending');
    expect(await f.messageCount(retryTopic)).toBe(0);
  });

  it('refuses with ORIGINAL_NOT_RETAINED, at once, an offset that holds a transaction marker at the end of the partition', { timeout: 60_000 }, async () => {
    const topic = `${f.prefix()}tx`;
    await f.createTopics([{ topic }]);
    const producer = new Kafka({ brokers: f.brokers, logLevel: logLevel.NOTHING }).producer({
      transactionalId: `redrive-${topic}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ value: 'in a transaction' }] });
      await transaction.commit(); // offset 1: the commit marker, the partition's last record
    } finally {
      await producer.disconnect();
    }
    // The coordinator writes the marker after the commit returns: until then the partition's stable end is before it.
    await waitFor(async () => (await f.topicEnds(topic))[0] === 2 || undefined, { timeoutMs: 10_000, message: 'the commit marker written' });
    const started = Date.now();
    const error = await rejection(f.publisher.readRecordAt({ topic, partition: 0, offset: '1' }, { timeoutMs: 20_000 }));
    expect(isEventBusError(error, 'ORIGINAL_NOT_RETAINED'), String(error)).toBe(true);
    expect((error as Error).message).toContain('holds no record at that offset');
    // Not the timeout: the read sees the filtered batch end past the offset.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('refuses with ORIGINAL_NOT_RETAINED a row from a replay to the group, whose offset is the event id and no position', async () => {
    const prefix = f.prefix();
    const groupId = f.group('replayed');
    const eventId = '01a25176-edf1-7497-9005-3b5a3891963a';
    // As the mirror stores a DLQ record without the value of an event a replay sent through the retry topic.
    const offset = BigInt(`0x${eventId.replace(/-/g, '')}`).toString(10);
    const { rows } = await f.pool.query(
      `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, topic, partition, "offset",
         headers, error_class, error_message, attempts, first_failed_at, last_failed_at, message_timestamp, header_names, header_values)
       VALUES ($1, 'consumer', $2, $3, 'acme', 'order.placed', $4, 0, $5, $6::jsonb, 'NonRetriableError', 'cannot bill', 1, now(), now(), now(), '{}', '{}')
       RETURNING id::text`,
      [`consumer:${groupId}:${prefix}order:0:${offset}`, groupId, eventId, `${prefix}order`, offset, JSON.stringify({ 'eventbus-dlq-truncated': '41000' })],
    );
    // The event in the EventLog, created an hour before the replay sent it (the row's message_timestamp is the replay's send time).
    await f.pool.query(
      `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
       VALUES ($1, 'acme', $2, 'order.placed', '{}', 'c', '2026-03-01T08:15:30.250Z')`,
      [eventId, `key-${eventId}`],
    );
    const error = await rejection(redriveDeadLetter(f.pool, f.publisher, rows[0].id));
    expect(isEventBusError(error, 'ORIGINAL_NOT_RETAINED'), String(error)).toBe(true);
    expect((error as Error).message).toContain(`came from a replay to the group: its offset (${offset}) is the event id`);
    expect((error as Error).message).toContain(
      `The EventLog has event ${eventId}, created at 2026-03-01T08:15:30.250000Z: replay it to the group (eventbus replay --tenant acme --group ${groupId} --event-id ${eventId})`,
    );
    expect(await statusOf(rows[0].id)).toBe('pending');
  });

  it('gives up a read that takes longer than its timeout with BROKER_UNAVAILABLE (retriable), without hanging', { timeout: 30_000 }, async () => {
    const { row, eventTopic, healthy } = await deadLetterWithoutValue();
    const before = await f.groupsStartingWith('eventbus-read-');
    const started = Date.now();
    const error = await rejection(f.publisher.readRecordAt({ topic: eventTopic, partition: 0, offset: '0' }, { timeoutMs: 1 }));
    expect(isEventBusError(error, 'BROKER_UNAVAILABLE'), String(error)).toBe(true);
    expect((error as { retriable: boolean }).retriable).toBe(true);
    expect((error as Error).message).toContain(`reading ${eventTopic} partition 0 offset 0 took more than 1 ms`);
    // Bounded: the consumer of the read is let go of within its disconnect wait.
    expect(Date.now() - started).toBeLessThan(10_000);
    // Nothing of the read goes on behind the error: no read group joins later and stays (each read deletes its own).
    const leftOver = async () => (await f.groupsStartingWith('eventbus-read-')).filter((g) => !before.includes(g));
    // Not a synchronisation: a read left running would join its group only after the error; this is the window it gets to show.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await waitFor(async () => (await leftOver()).length === 0 || undefined, { timeoutMs: 10_000, message: 'no read group left behind' });
    // The same read with time enough finds the original.
    const record = await f.publisher.readRecordAt({ topic: eventTopic, partition: 0, offset: '0' });
    expect(record.headers.ce_id?.toString()).toBe(row.event_id);
    expect(JSON.parse(record.value!.toString())).toEqual({ fail: true, ...LARGE_PAYLOAD });
    // And the record at the next offset is the next event, not the partition's first.
    const next = await f.publisher.readRecordAt({ topic: eventTopic, partition: 0, offset: '1' });
    expect(next.headers.ce_id?.toString()).toBe(healthy);
  });
});
