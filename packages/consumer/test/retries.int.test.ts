import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NonRetriableError, uuidv7 } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { consumerDedupeKey, DLQ_HEADER } from '../src/index.js';
import { consumerFixture, metricLog } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-retries');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

// Lateness allowed past a retry's due time: the resume timer, one fetch round (maxWait 100 ms)
// and the handler dispatch. Earliness allowed: timer granularity only.
const LATE_MS = 750;
const EARLY_MS = 15;

describe('EventConsumer retries and DLQ (real Kafka, real Postgres)', () => {
  it('retries a failing tenant 1 + maxRetries times on the backoff, dead-letters it once, and keeps serving other tenants', async () => {
    const prefix = f.prefix();
    const groupId = f.group('indexer');
    const retryConfig = { maxRetries: 3, initialDelayMs: 300, backoffMultiplier: 2, maxDelayMs: 10_000 };
    const attempts: Array<{ attempt: number; at: number }> = [];
    const served = new Map<string, number>();
    const metrics = metricLog();
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig, onMetric: metrics.onMetric }, [
      {
        eventTypes: ['product.*'],
        handler: async (event, ctx) => {
          if (event.tenantId === 'bad') {
            attempts.push({ attempt: ctx.attempt, at: Date.now() });
            throw new TypeError(`cannot index ${event.id}`);
          }
          served.set(event.id, Date.now());
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    const mirror = await f.mirror({ routing: { prefix }, groups: [groupId] });

    const [badId] = await f.publish(prefix, [{ tenantId: 'bad', eventType: 'product.created', payload: { sku: 'x' } }]);
    await waitFor(() => attempts.length >= 1, { timeoutMs: 15_000, message: 'first attempt' });
    const goodIds = await f.publish(
      prefix,
      ['good-1', 'good-2', 'good-3'].map((tenantId) => ({ tenantId, eventType: 'product.updated' })),
    );
    await waitFor(() => dlq.messages.length >= 1, { timeoutMs: 20_000, message: 'the DLQ record' });

    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4]);
    const expected = [300, 600, 1200];
    attempts.slice(1).forEach((a, i) => {
      const delay = a.at - attempts[i]!.at;
      expect(delay, `delay before retry ${i + 1}`).toBeGreaterThanOrEqual(expected[i]! - EARLY_MS);
      expect(delay, `delay before retry ${i + 1}`).toBeLessThanOrEqual(expected[i]! + LATE_MS);
    });
    // The other tenants did not wait for the failing one's retries.
    for (const id of goodIds) expect(served.get(id), `event ${id} served before the last retry`).toBeLessThan(attempts[3]!.at);

    expect(dlq.messages).toHaveLength(1);
    const record = dlq.messages[0]!;
    expect(record.key).toBe('bad');
    expect(JSON.parse(record.value!)).toEqual({ sku: 'x' });
    expect(record.headers).toMatchObject({
      ce_id: badId,
      ce_type: 'product.created',
      ce_tenantid: 'bad',
      [DLQ_HEADER.originalTopic]: `${prefix}product`,
      [DLQ_HEADER.group]: groupId,
      [DLQ_HEADER.errorClass]: 'TypeError',
      [DLQ_HEADER.errorMessage]: `cannot index ${badId}`,
      [DLQ_HEADER.attempts]: '4',
    });
    expect(record.headers).not.toHaveProperty('eventbus-attempt');
    expect(record.headers[DLQ_HEADER.errorStack]).toContain('TypeError: cannot index');
    expect(Number(record.headers[DLQ_HEADER.firstFailureAt])).toBeCloseTo(attempts[0]!.at, -2);
    expect(Number(record.headers[DLQ_HEADER.lastFailureAt])).toBeGreaterThanOrEqual(attempts[3]!.at);

    expect(metrics.of(badId!)).toEqual(['failed:0', 'failed:1', 'failed:2', 'dead_lettered:3']);
    for (const id of goodIds) expect(metrics.of(id)).toEqual(['success:0']);

    const row = await waitFor(async () => (await f.pool.query('SELECT * FROM eventbus.dead_letters WHERE group_id = $1', [groupId])).rows[0], {
      timeoutMs: 10_000,
      message: 'the mirrored dead_letters row',
    });
    expect(row).toMatchObject({
      dedupe_key: consumerDedupeKey(
        groupId,
        `${prefix}product`,
        Number(record.headers[DLQ_HEADER.originalPartition]),
        record.headers[DLQ_HEADER.originalOffset]!,
      ),
      stage: 'consumer',
      event_id: badId,
      tenant_id: 'bad',
      event_type: 'product.created',
      event_key: `key-${badId}`,
      topic: `${prefix}product`,
      message_key: 'bad',
      value: '{"sku":"x"}',
      error_class: 'TypeError',
      error_message: `cannot index ${badId}`,
      attempts: 4,
      status: 'pending',
    });
    expect(row.headers).toMatchObject({ ce_id: badId, [DLQ_HEADER.group]: groupId });
    expect(row.first_failed_at.getTime()).toBeCloseTo(attempts[0]!.at, -2);
    expect(mirror.mirrored).toBe(1);
    const { rows } = await f.pool.query('SELECT count(*)::int AS n FROM eventbus.dead_letters WHERE group_id = $1', [groupId]);
    expect(rows[0].n).toBe(1);
  });

  it('handles each retry when due: a short retry does not wait behind a longer one of the same tenant (a partition range per delay)', async () => {
    const prefix = f.prefix();
    const groupId = f.group('tiers');
    // Two delays: 200 ms, then 3 s.
    const retryConfig = { maxRetries: 2, initialDelayMs: 200, backoffMultiplier: 15, maxDelayMs: 3000 };
    const attempts = new Map<string, number[]>();
    await f.consumer({ groupId, routing: { prefix }, retryConfig }, [
      {
        eventTypes: ['product.*'],
        handler: async (event, ctx) => {
          const at = attempts.get(event.id) ?? [];
          attempts.set(event.id, [...at, Date.now()]);
          const failUpTo = (event.payload as { failUpTo: number }).failUpTo;
          if (ctx.attempt <= failUpTo) throw new Error(`attempt ${ctx.attempt} fails`);
        },
      },
    ]);
    const [long] = await f.publish(prefix, [{ tenantId: 'x', eventType: 'product.created', payload: { failUpTo: 2 } }]);
    // Its second attempt failed: a retry copy due in 3 s is in the retry topic.
    await waitFor(() => (attempts.get(long!)?.length ?? 0) >= 2, { timeoutMs: 15_000, message: 'the second attempt' });
    const [short] = await f.publish(prefix, [{ tenantId: 'x', eventType: 'product.created', payload: { failUpTo: 1 } }]);
    await waitFor(() => (attempts.get(short!)?.length ?? 0) >= 2, { timeoutMs: 15_000, message: 'the retry of the second event' });
    const [failedAt, retriedAt] = attempts.get(short!)!;
    // Due 200 ms after its failure; behind the 3 s copy of the same key it would wait about 2.5 s more.
    expect(retriedAt! - failedAt!).toBeLessThanOrEqual(200 + LATE_MS);
    expect(attempts.get(long!)).toHaveLength(2);
    await waitFor(() => attempts.get(long!)!.length === 3, { timeoutMs: 15_000, message: 'the long retry' });
  });

  it('dead-letters a NonRetriableError and an undecodable message at the first attempt and keeps running', async () => {
    const prefix = f.prefix();
    const groupId = f.group('strict');
    const calls: string[] = [];
    const metrics = metricLog();
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 5, initialDelayMs: 200 }, onMetric: metrics.onMetric }, [
      {
        eventTypes: ['order.#'],
        handler: async (event) => {
          calls.push(event.id);
          if ((event.payload as { reject?: boolean }).reject) throw new NonRetriableError('order is malformed');
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    const [rejected] = await f.publish(prefix, [{ tenantId: 't1', eventType: 'order.placed', payload: { reject: true } }]);
    // Raw bytes with no CloudEvents headers, straight onto the event topic.
    await f.publisher.publish([{ topic: `${prefix}order`, key: 't1', value: Buffer.from([0xff, 0x00, 0x7b, 0x6e]), headers: { 'x-junk': '1' } }]);
    const [after] = await f.publish(prefix, [{ tenantId: 't1', eventType: 'order.placed', payload: {} }]);

    await waitFor(() => dlq.messages.length >= 2 && calls.includes(after!), { timeoutMs: 15_000, message: 'two DLQ records and the later event' });
    expect(calls.filter((id) => id === rejected)).toHaveLength(1);
    const byClass = Object.fromEntries(dlq.messages.map((m) => [m.headers[DLQ_HEADER.errorClass], m]));
    expect(Object.keys(byClass).sort()).toEqual(['EventBusError:UNDECODABLE_MESSAGE', 'NonRetriableError']);
    expect(byClass.NonRetriableError!.headers).toMatchObject({ ce_id: rejected, [DLQ_HEADER.attempts]: '1', [DLQ_HEADER.errorMessage]: 'order is malformed' });
    const junk = byClass['EventBusError:UNDECODABLE_MESSAGE']!;
    expect(junk.headers).toMatchObject({ 'x-junk': '1', [DLQ_HEADER.attempts]: '1', [DLQ_HEADER.originalTopic]: `${prefix}order` });
    expect(junk.headers[DLQ_HEADER.errorMessage]).toContain('header ce_id is missing');
    expect(metrics.of(rejected!)).toEqual(['dead_lettered:0']);
    expect(await f.messageCount(consumer.options.retryTopic)).toBe(0);
  });

  it('dead-letters an event whose handler rejects with a value that has no string form (null prototype), and handles the batch once', async () => {
    const prefix = f.prefix();
    const groupId = f.group('odd-throw');
    const calls: string[] = [];
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 0 } }, [
      {
        eventTypes: ['doc.*'],
        handler: async (event) => {
          calls.push(event.id);
          // A parsed query string or a library's error-ish bag: Object.create(null), so String() throws.
          if ((event.payload as { fail?: boolean }).fail) throw Object.assign(Object.create(null), { code: 'E_DOWNSTREAM' });
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    // One tenant, one partition: the failing event and the next one in the same batch.
    const [odd, next] = await f.publish(prefix, [
      { tenantId: 't1', eventType: 'doc.saved', payload: { fail: true } },
      { tenantId: 't1', eventType: 'doc.saved' },
    ]);
    // The consumer's own String(error) threw once: the batch failed, kafkajs restarted the consumer
    // and handled the batch again, forever, without a DLQ record.
    await waitFor(() => dlq.messages.length >= 1 && calls.includes(next!), { timeoutMs: 20_000, message: 'the DLQ record and the next event' });
    expect(dlq.messages[0]!.headers).toMatchObject({
      ce_id: odd,
      [DLQ_HEADER.attempts]: '1',
      [DLQ_HEADER.errorClass]: 'object',
      [DLQ_HEADER.errorMessage]: "[Object: null prototype] { code: 'E_DOWNSTREAM' }",
    });
    expect(calls).toEqual([odd, next]);
  });

  it('dead-letters a retry whose subscription name now belongs to another subscription (positional default names), naming why and no subscription', async () => {
    const prefix = f.prefix();
    const groupId = f.group('renamed');
    const retryConfig = { maxRetries: 2, initialDelayMs: 4000, backoffMultiplier: 1, maxDelayMs: 4000 };
    let firstCalls = 0;
    // v1: one subscription, default name "0", failing the first attempt.
    const v1 = await f.consumer({ groupId, routing: { prefix }, retryConfig }, [
      {
        eventTypes: ['product.*'],
        handler: async () => {
          firstCalls++;
          throw new Error('index down');
        },
      },
    ]);
    const retryTopic = v1.options.retryTopic;
    const dlq = await f.collect([v1.options.dlqTopic]);
    const [id] = await f.publish(prefix, [{ tenantId: 't1', eventType: 'product.created' }]);
    await waitFor(async () => firstCalls >= 1 && (await f.messageCount(retryTopic)) >= 1, { timeoutMs: 20_000, message: 'the retry copy' });
    await v1.stop(); // before the retry is due (4 s)

    // v2 (a deploy): a new subscription added first, so the product one is now "1" and "0" handles order.* only.
    const productCalls: number[] = [];
    await f.consumer({ groupId, routing: { prefix }, retryConfig }, [
      { eventTypes: ['order.*'], handler: async () => {} },
      { eventTypes: ['product.*'], handler: async (_e, ctx) => void productCalls.push(ctx.attempt) },
    ]);
    // Committed as "not for us" before: the event was lost in silence.
    await waitFor(() => dlq.messages.length > 0, { timeoutMs: 20_000, message: 'the retry dead-lettered' });
    const { headers } = dlq.messages[0]!;
    expect(headers).toMatchObject({ ce_id: id, [DLQ_HEADER.errorClass]: 'EventBusError:UNKNOWN_SUBSCRIPTION', [DLQ_HEADER.attempts]: '2' });
    // No subscription: its re-drive runs the ones that handle product.created then.
    expect(headers[DLQ_HEADER.subscription]).toBeUndefined();
    const message = headers[DLQ_HEADER.errorMessage]!;
    expect(message).toContain('for subscription "0" of group');
    expect(message).toContain('its subscriptions are "0" (order.*), "1" (product.*)');
    expect(message).toContain('(now "1"): eventbus dlq retry <id>');
    expect(productCalls).toEqual([]);
  });

  it('keeps retries and dead letters per group: only the failing group dead-letters the event', async () => {
    const prefix = f.prefix();
    const failing = f.group('failing');
    const healthy = f.group('healthy');
    const seen = { failing: 0, healthy: 0 };
    const retryConfig = { maxRetries: 1, initialDelayMs: 200 };
    const a = await f.consumer({ groupId: failing, routing: { prefix }, retryConfig }, [
      {
        eventTypes: ['pricechange.applied'],
        handler: async () => {
          seen.failing++;
          throw new Error('search cluster down');
        },
      },
    ]);
    const b = await f.consumer({ groupId: healthy, routing: { prefix }, retryConfig }, [
      { eventTypes: ['pricechange.applied'], handler: async () => void seen.healthy++ },
    ]);
    const dlqA = await f.collect([a.options.dlqTopic]);
    const dlqB = await f.collect([b.options.dlqTopic]);
    const [id] = await f.publish(prefix, [{ tenantId: 't', eventType: 'pricechange.applied' }]);
    await waitFor(() => dlqA.messages.length === 1 && seen.healthy === 1, { timeoutMs: 15_000, message: 'the failing group DLQ record' });
    expect(seen.failing).toBe(2);
    expect(dlqA.messages[0]!.headers).toMatchObject({ ce_id: id, [DLQ_HEADER.group]: failing, [DLQ_HEADER.attempts]: '2' });
    expect(a.options.dlqTopic).not.toBe(b.options.dlqTopic);
    expect(await f.messageCount(b.options.dlqTopic)).toBe(0);
    expect(await f.messageCount(b.options.retryTopic)).toBe(0);
    expect(await f.messageCount(a.options.retryTopic)).toBe(1);
    expect(dlqB.messages).toHaveLength(0);
  });

  it("in-order mode holds the failing tenant's later events until the retry succeeds", async () => {
    const prefix = f.prefix();
    const groupId = f.group('ledger');
    const log: string[] = [];
    const failuresLeft = new Map<string, number>();
    const consumer = await f.consumer({ groupId, routing: { prefix }, mode: 'in-order', retryConfig: { maxRetries: 4, initialDelayMs: 200 } }, [
      {
        eventTypes: ['payment.#'],
        handler: async (event, ctx) => {
          const { n } = event.payload as { n: number };
          log.push(`${event.tenantId}#${n}@${ctx.attempt}`);
          const left = failuresLeft.get(event.id) ?? 0;
          if (left > 0) {
            failuresLeft.set(event.id, left - 1);
            throw new Error('ledger locked');
          }
        },
      },
    ]);
    const first = uuidv7();
    failuresLeft.set(first, 2);
    await f.publish(
      prefix,
      [1, 2, 3].map((n) => ({ tenantId: 'acme', eventType: 'payment.captured', payload: { n }, ...(n === 1 ? { id: first } : {}) })),
    );
    await waitFor(() => log.filter((l) => l.startsWith('acme')).length >= 5, { timeoutMs: 15_000, message: 'all acme deliveries' });
    expect(log.filter((l) => l.startsWith('acme'))).toEqual(['acme#1@1', 'acme#1@2', 'acme#1@3', 'acme#2@1', 'acme#3@1']);
    expect(await f.messageCount(consumer.options.retryTopic)).toBe(0);
  });
});
