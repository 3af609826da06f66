import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeDropped, dlqTopicFor, HEADER, NonRetriableError, RETRY_HEADER, retryTopicFor } from '@eventbus/core';
import { listDeadLetters, redriveDeadLetter } from '@eventbus/dead-letters';
import { COPY_TOPIC_HEADROOM_BYTES } from '@eventbus/kafka';
import { waitFor } from '@eventbus/dev-services';
import { DLQ_HEADER } from '../src/index.js';
import { consumerFixture, recordingLogger } from './consumer-fixture.js';

// A retry or DLQ copy carries the whole event plus headers. One that its topic refuses as too
// large would be refused on every read of the event: without a way out, its offset is never
// committed and the partition is rewound to it forever. These tests give the copy topics a
// smaller max.message.bytes than the event topic and check that the partition goes on and the
// event is not lost.

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('copy-limits');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

/** A copy topic limit that the large events below exceed and the small ones fit. */
const SMALL_LIMIT = 16 * 1024;
const LARGE_PAYLOAD = { blob: 'x'.repeat(40_000) };

/** One tenant, so one partition of a one-partition event topic: every event below shares it. */
async function topics(groupId: string, limits: { retry?: number; dlq?: number; event?: number }) {
  const prefix = f.prefix();
  const eventTopic = `${prefix}order`;
  const retryTopic = retryTopicFor(prefix, groupId);
  const dlqTopic = dlqTopicFor(prefix, groupId);
  await f.createTopics([
    { topic: eventTopic, ...(limits.event ? { maxMessageBytes: limits.event } : {}) },
    ...(limits.retry ? [{ topic: retryTopic, maxMessageBytes: limits.retry }] : []),
    ...(limits.dlq ? [{ topic: dlqTopic, maxMessageBytes: limits.dlq }] : []),
  ]);
  return { prefix, eventTopic, retryTopic, dlqTopic };
}

/** Waits until the group committed the event topic's partition up to its end. */
async function committedToEnd(groupId: string, topic: string): Promise<number> {
  const [end] = await f.topicEnds(topic);
  await waitFor(async () => ((await f.committedOffsets(groupId, topic))[0] ?? -1) >= end! || undefined, {
    timeoutMs: 20_000,
    message: `the group commits ${topic} up to its end (${end})`,
  });
  return end!;
}

describe('a retry or DLQ copy larger than its topic accepts (real Kafka)', () => {
  it('sends a DLQ record without the value in its place: the partition goes on, the mirror records it, a re-drive sends the original from its topic', {
    timeout: 60_000,
  }, async () => {
    const groupId = f.group('dlq-small');
    const { prefix, eventTopic, retryTopic, dlqTopic } = await topics(groupId, { dlq: SMALL_LIMIT });
    const handled: string[] = [];
    const payloads = new Map<string, unknown>();
    // Set before the re-drive: the handler's bug is fixed, the re-driven event goes through.
    let fixed = false;
    const { lines, logger } = recordingLogger();
    await f.consumer({ groupId, routing: { prefix }, logger }, [
      {
        eventTypes: ['order.placed'],
        name: 'billing',
        handler: async (event) => {
          if ((event.payload as { fail?: boolean }).fail && !fixed) throw new NonRetriableError('cannot bill this order');
          handled.push(event.id);
          payloads.set(event.id, event.payload);
        },
      },
    ]);
    // The existing DLQ topic is named at start, with its limit and the setting to change.
    const warning = lines.find((l) => l.level === 'warn' && l.fields.topic === dlqTopic);
    expect(warning?.message).toContain(`accepts ${SMALL_LIMIT} bytes (max.message.bytes)`);
    expect(warning?.message).toContain(`--entity-name ${dlqTopic} --add-config max.message.bytes=`);

    const dlq = await f.collect([dlqTopic]);
    const [large, small, ...healthy] = await f.publish(prefix, [
      { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true, ...LARGE_PAYLOAD } },
      { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true } },
      ...Array.from({ length: 3 }, () => ({ tenantId: 'acme', eventType: 'order.placed', payload: {} })),
    ]);

    // The partition goes on: the later events are handled and the commit passes them all.
    await waitFor(() => healthy.every((id) => handled.includes(id!)) || undefined, { timeoutMs: 20_000, message: 'the healthy events after the large one' });
    expect(await committedToEnd(groupId, eventTopic)).toBe(5);
    await dlq.waitForEvents(2);
    const marker = dlq.messages.find((m) => m.headers.ce_id === large)!;
    expect(marker.value).toBe('');
    expect(Number(marker.headers[DLQ_HEADER.truncated])).toBeGreaterThan(40_000);
    expect(marker.headers).toMatchObject({
      [DLQ_HEADER.originalTopic]: eventTopic,
      [DLQ_HEADER.originalPartition]: '0',
      [DLQ_HEADER.originalOffset]: '0',
      [DLQ_HEADER.errorClass]: 'NonRetriableError',
      [DLQ_HEADER.errorMessage]: 'cannot bill this order',
    });
    // The small failed event's copy is whole; each failure is one DLQ record (no copy re-sent after a rewind).
    const whole = dlq.messages.find((m) => m.headers.ce_id === small)!;
    expect(JSON.parse(whole.value!)).toEqual({ fail: true });
    expect(whole.headers[DLQ_HEADER.truncated]).toBeUndefined();
    expect(dlq.messages).toHaveLength(2);
    expect(lines.some((l) => l.level === 'error' && l.message.startsWith('DLQ copy refused as too large'))).toBe(true);

    // The mirror stores the marker as a row without a value; the listing says so; a re-drive reads the original from its topic.
    await f.mirror({ routing: { prefix }, groups: [groupId] });
    const row = await waitFor(async () => (await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE event_id = $1', [large])).rows[0], {
      timeoutMs: 15_000,
      message: 'the dead_letters row of the large event',
    });
    expect(row).toMatchObject({ stage: 'consumer', group_id: groupId, topic: eventTopic, partition: 0, offset: '0', value: null, value_bytes: null });
    const [listed] = await listDeadLetters(f.pool, { groupId, status: 'pending', limit: 10, typeRegexes: [] }).then((rows) =>
      rows.filter((r) => r.eventId === large),
    );
    expect(listed!.refusedCopyBytes).toBe(Number(marker.headers[DLQ_HEADER.truncated]));
    const retried = await f.collect([retryTopic]);
    fixed = true;
    expect(await redriveDeadLetter(f.pool, f.publisher, row.id)).toMatchObject({ outcome: 'redriven', stage: 'consumer' });
    // The consumer handles the event with its original value, read from eventTopic partition 0 offset 0.
    await waitFor(() => handled.includes(large!) || undefined, { timeoutMs: 20_000, message: 'the re-driven large event is handled' });
    expect(payloads.get(large!)).toEqual({ fail: true, ...LARGE_PAYLOAD });
    // The retry copy is the original record (key, value, identity headers) with the retry headers of a re-drive.
    await retried.waitForEvents(1);
    const copy = retried.messages.find((m) => m.headers.ce_id === large)!;
    expect(copy.key).toBe('acme');
    expect(JSON.parse(copy.value!)).toEqual({ fail: true, ...LARGE_PAYLOAD });
    expect(copy.headers).toMatchObject({ [RETRY_HEADER.attempt]: '1', [RETRY_HEADER.originalTopic]: eventTopic, [RETRY_HEADER.originalOffset]: '0' });
    expect(copy.headers[DLQ_HEADER.truncated]).toBeUndefined();
    // Marked once: a second re-drive sends nothing.
    expect(await redriveDeadLetter(f.pool, f.publisher, row.id)).toMatchObject({ outcome: 'already_redriven' });
    expect(retried.messages.filter((m) => m.headers.ce_id === large)).toHaveLength(1);
  });

  it('sends a DLQ record without the key and oversize identity headers when even the record without the value is refused: the partition goes on, the mirror records where the original is, a re-drive sends the original', {
    timeout: 60_000,
  }, async () => {
    const groupId = f.group('dlq-key');
    const { prefix, eventTopic, dlqTopic } = await topics(groupId, { dlq: SMALL_LIMIT });
    const handled: Array<{ id: string; tenantId: string; payload: unknown }> = [];
    let fixed = false;
    await f.consumer({ groupId, routing: { prefix }, logger: recordingLogger().logger }, [
      {
        eventTypes: ['order.placed'],
        name: 'billing',
        handler: async (event) => {
          if ((event.payload as { fail?: boolean }).fail && !fixed) throw new NonRetriableError('cannot bill this order');
          handled.push({ id: event.id, tenantId: event.tenantId, payload: event.payload });
        },
      },
    ]);
    const dlq = await f.collect([dlqTopic]);
    // The tenant id is the record key and the ce_tenantid header: twice its size in the record
    // without the value, over what the DLQ topic accepts, while the event topic took the event.
    const hugeTenant = 'T'.repeat(SMALL_LIMIT + 4000);
    const [oversize] = await f.publish(prefix, [{ tenantId: hugeTenant, eventType: 'order.placed', payload: { fail: true } }]);
    const healthy = await f.publish(
      prefix,
      Array.from({ length: 3 }, () => ({ tenantId: 'acme', eventType: 'order.placed', payload: {} })),
    );

    // The partition goes on: the later events (same one-partition topic) are handled and committed.
    await waitFor(() => healthy.every((id) => handled.some((h) => h.id === id)) || undefined, {
      timeoutMs: 20_000,
      message: 'the healthy events after the oversize one',
    });
    expect(await committedToEnd(groupId, eventTopic)).toBe(4);
    await dlq.waitForEvents(1);
    expect(dlq.messages).toHaveLength(1);
    const record = dlq.messages[0]!;
    expect(record.key).toBe('');
    expect(record.value).toBe('');
    expect(record.headers[HEADER.tenantId]).toBeUndefined();
    expect(record.headers).toMatchObject({
      [HEADER.id]: oversize,
      [HEADER.type]: 'order.placed',
      [DLQ_HEADER.originalTopic]: eventTopic,
      [DLQ_HEADER.originalPartition]: '0',
      [DLQ_HEADER.originalOffset]: '0',
      [DLQ_HEADER.group]: groupId,
      [DLQ_HEADER.errorClass]: 'NonRetriableError',
      [DLQ_HEADER.errorMessage]: 'cannot bill this order',
    });
    // The key and the tenant header are named with their sizes, and the stack (an operator can do without it).
    expect(decodeDropped(record.headers[DLQ_HEADER.dropped]!)).toEqual([
      { name: 'key', bytes: hugeTenant.length },
      { name: HEADER.tenantId, bytes: hugeTenant.length },
      { name: DLQ_HEADER.errorStack, bytes: expect.any(Number) },
    ]);
    expect(Number(record.headers[DLQ_HEADER.truncated])).toBeGreaterThan(2 * hugeTenant.length);

    // The mirror stores it without key, value and tenant; the listing marks it; a re-drive reads the original from its topic.
    await f.mirror({ routing: { prefix }, groups: [groupId] });
    const row = await waitFor(async () => (await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE event_id = $1', [oversize])).rows[0], {
      timeoutMs: 15_000,
      message: 'the dead_letters row of the oversize event',
    });
    expect(row).toMatchObject({
      stage: 'consumer',
      group_id: groupId,
      topic: eventTopic,
      partition: 0,
      offset: '0',
      tenant_id: null,
      event_type: 'order.placed',
      message_key: null,
      message_key_bytes: null,
      value: null,
      value_bytes: null,
    });
    const [listed] = (await listDeadLetters(f.pool, { groupId, status: 'pending', limit: 10, typeRegexes: [] })).filter((r) => r.eventId === oversize);
    expect(listed!.refusedCopyBytes).toBe(Number(record.headers[DLQ_HEADER.truncated]));
    fixed = true;
    expect(await redriveDeadLetter(f.pool, f.publisher, row.id)).toMatchObject({ outcome: 'redriven', stage: 'consumer' });
    // The key and the tenant the DLQ record left out come back with the original record.
    const redriven = await waitFor(() => handled.find((h) => h.id === oversize), { timeoutMs: 20_000, message: 'the re-driven oversize event is handled' });
    expect(redriven).toEqual({ id: oversize, tenantId: hugeTenant, payload: { fail: true } });
  });

  it('sends an event whose retry copy the retry topic refuses to the DLQ instead, whole', { timeout: 60_000 }, async () => {
    const groupId = f.group('retry-small');
    const { prefix, eventTopic, retryTopic, dlqTopic } = await topics(groupId, { retry: SMALL_LIMIT });
    const attempts: Array<{ id: string; attempt: number }> = [];
    await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 3, initialDelayMs: 100 } }, [
      {
        eventTypes: ['order.placed'],
        name: 'billing',
        handler: async (event, ctx) => {
          attempts.push({ id: event.id, attempt: ctx.attempt });
          if ((event.payload as { fail?: boolean }).fail) throw new Error('billing service down');
        },
      },
    ]);
    const dlq = await f.collect([dlqTopic]);
    const [large, ...healthy] = await f.publish(prefix, [
      { tenantId: 'acme', eventType: 'order.placed', payload: { fail: true, ...LARGE_PAYLOAD } },
      ...Array.from({ length: 3 }, () => ({ tenantId: 'acme', eventType: 'order.placed', payload: {} })),
    ]);
    await dlq.waitForEvents(1);
    const copy = dlq.messages[0]!;
    expect(copy.headers.ce_id).toBe(large);
    expect(JSON.parse(copy.value!)).toEqual({ fail: true, ...LARGE_PAYLOAD });
    expect(copy.headers).toMatchObject({ [DLQ_HEADER.attempts]: '1', [DLQ_HEADER.errorMessage]: 'billing service down' });
    expect(await committedToEnd(groupId, eventTopic)).toBe(4);
    for (const id of healthy) expect(attempts.some((a) => a.id === id)).toBe(true);
    // Handled once: no retry copy was stored, and the event was not read again after a rewind.
    expect(attempts.filter((a) => a.id === large)).toEqual([{ id: large, attempt: 1 }]);
    expect(await f.messageCount(retryTopic)).toBe(0);
  });

  it('creates the retry and DLQ topics with room over the event topic, so a copy of an event near its limit is stored and retried', {
    timeout: 90_000,
  }, async () => {
    const groupId = f.group('sized');
    // Above the broker's default (1 MiB): the copy topics must follow the event topic, not the broker.
    const eventLimit = 2_000_000;
    const { prefix, retryTopic, dlqTopic, eventTopic } = await topics(groupId, { event: eventLimit });
    const attempts: number[] = [];
    const { lines, logger } = recordingLogger();
    await f.consumer({ groupId, routing: { prefix }, logger, retryConfig: { maxRetries: 1, initialDelayMs: 100 } }, [
      {
        eventTypes: ['order.placed'],
        name: 'billing',
        handler: async (_event, ctx) => {
          attempts.push(ctx.attempt);
          throw new Error('billing service down');
        },
      },
    ]);
    expect(await f.maxMessageBytes(retryTopic)).toBe(eventLimit + COPY_TOPIC_HEADROOM_BYTES);
    expect(await f.maxMessageBytes(dlqTopic)).toBe(eventLimit + COPY_TOPIC_HEADROOM_BYTES);
    expect(lines.filter((l) => l.level === 'warn')).toEqual([]);

    // As large as the event topic takes (its batch framing and the event's headers aside).
    const dlq = await f.collect([dlqTopic]);
    const [id] = await f.publish(prefix, [{ tenantId: 'acme', eventType: 'order.placed', payload: { blob: 'x'.repeat(eventLimit - 1500) } }]);
    // The retry copy was stored and read back (attempt 2), then the DLQ copy, whole.
    await dlq.waitForEvents(1, 60_000);
    expect(attempts).toEqual([1, 2]);
    expect(dlq.messages[0]!.headers.ce_id).toBe(id);
    expect(dlq.messages[0]!.headers[DLQ_HEADER.truncated]).toBeUndefined();
    expect(dlq.messages[0]!.value!.length).toBeGreaterThan(eventLimit - 1500);
    expect(await committedToEnd(groupId, eventTopic)).toBe(1);
  });
});
