import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@eventbus/dev-services';
import { NonRetriableError } from '@eventbus/core';
import { DLQ_HEADER } from '../src/index.js';
import { consumerFixture, metricLog, recordingLogger } from './consumer-fixture.js';

let f: Awaited<ReturnType<typeof consumerFixture>>;
beforeAll(async () => {
  f = await consumerFixture('consumer-tenant-circuit');
});
afterEach(async () => f.reset());
afterAll(async () => f?.close());

const retryConfig = { maxRetries: 3, initialDelayMs: 100, backoffMultiplier: 2, maxDelayMs: 1000 };
const CIRCUIT_OPEN = 'EventBusError:TENANT_CIRCUIT_OPEN';

describe('the per-tenant circuit breaker (real Kafka)', () => {
  it("dead-letters a failing tenant's events without handler calls while the others succeed, probes after openMs, and closes on success", async () => {
    const prefix = f.prefix();
    const groupId = f.group('circuit');
    const { lines, logger } = recordingLogger();
    const metrics = metricLog();
    let broken = true;
    const badCalls: string[] = [];
    const handledGood = new Set<string>();
    const consumer = await f.consumer(
      {
        groupId,
        routing: { prefix },
        retryConfig,
        logger,
        onMetric: metrics.onMetric,
        tenantCircuitBreaker: { failureThreshold: 5, minStreakMs: 0, openMs: 2000 },
      },
      [
        {
          eventTypes: ['order.*'],
          handler: async (event) => {
            if (event.tenantId !== 'bad') return void handledGood.add(event.id);
            badCalls.push(event.id);
            if (broken) throw new Error('tenant bad: its database refuses connections');
          },
        },
      ],
    );
    const dlq = await f.collect([consumer.options.dlqTopic]);

    // The others succeed first: from then on bad's failures count.
    const warmup = await f.publish(prefix, [{ tenantId: 'good', eventType: 'order.created' }]);
    await waitFor(() => handledGood.has(warmup[0]!), { timeoutMs: 20_000, message: 'the healthy tenant handled' });
    const badIds: string[] = [];
    const goodIds: string[] = [];
    for (let i = 0; i < 20; i++) {
      badIds.push(...(await f.publish(prefix, [{ tenantId: 'bad', eventType: 'order.created' }])));
      goodIds.push(...(await f.publish(prefix, [{ tenantId: 'good', eventType: 'order.created' }])));
    }
    await waitFor(() => dlq.messages.length >= badIds.length, { timeoutMs: 30_000, message: "every one of bad's events in the DLQ" });
    await waitFor(() => goodIds.every((id) => handledGood.has(id)), { timeoutMs: 10_000, message: 'the healthy tenant handled throughout' });

    // Without the breaker: 20 events × 4 attempts = 80 calls. With it: the 5 failures that open
    // it, plus attempts already running or decided then; the rest never reached the handler.
    expect(badCalls.length).toBeGreaterThanOrEqual(5);
    expect(badCalls.length).toBeLessThan(20);
    const byId = new Map(dlq.messages.map((m) => [m.headers.ce_id!, m.headers]));
    expect([...byId.keys()].sort()).toEqual([...badIds].sort());
    const skipped = dlq.messages.filter((m) => m.headers[DLQ_HEADER.errorClass] === CIRCUIT_OPEN);
    expect(skipped.length).toBeGreaterThanOrEqual(badIds.length - badCalls.length);
    expect(skipped[0]!.headers[DLQ_HEADER.errorMessage]).toMatch(/tenant "bad" failed \d+ attempts in a row/);
    expect(skipped[0]!.headers[DLQ_HEADER.errorMessage]).toContain('last error: tenant bad: its database refuses connections');
    expect(skipped[0]!.headers[DLQ_HEADER.errorMessage]).toContain(`eventbus dlq retry --all --group ${groupId} --tenant bad`);
    // One warning; a probe that failed meanwhile (the publishing outlasted openMs) reopens it at info.
    const opened = lines.filter((l) => l.message.startsWith('tenant circuit opened'));
    expect(opened.filter((l) => l.level === 'warn')).toHaveLength(1);
    expect(opened[0]!.fields).toMatchObject({ groupId, tenantId: 'bad', failures: 5 });
    for (const id of goodIds) expect(metrics.of(id)).toEqual(['success:0']);

    // Fixed, and openMs later: the next event probes the circuit, succeeds and closes it.
    broken = false;
    const openUntil = Math.max(...lines.filter((l) => l.message.startsWith('tenant circuit opened')).map((l) => Date.parse(String(l.fields.openUntil))));
    await new Promise((r) => setTimeout(r, Math.max(0, openUntil - Date.now()) + 100));
    const callsBefore = badCalls.length;
    const [probe] = await f.publish(prefix, [{ tenantId: 'bad', eventType: 'order.created' }]);
    await waitFor(() => metrics.of(probe!).includes('success:0'), { timeoutMs: 15_000, message: 'the probe handled' });
    expect(badCalls.slice(callsBefore)).toEqual([probe]);
    await waitFor(() => lines.some((l) => l.message.startsWith('tenant circuit closed')), { timeoutMs: 5000, message: 'the close logged' });
    const after = await f.publish(prefix, [{ tenantId: 'bad', eventType: 'order.updated' }]);
    await waitFor(() => metrics.of(after[0]!).includes('success:0'), { timeoutMs: 15_000, message: 'handled again after the close' });
    expect(dlq.messages).toHaveLength(badIds.length);
  });

  it('opens no circuit while every tenant fails: each event gets every attempt of its retry settings', async () => {
    const prefix = f.prefix();
    const groupId = f.group('outage');
    const calls = new Map<string, number>();
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig, tenantCircuitBreaker: { failureThreshold: 3, openMs: 60_000 } }, [
      {
        eventTypes: ['order.*'],
        handler: async (event) => {
          calls.set(event.id, (calls.get(event.id) ?? 0) + 1);
          throw new Error('the shared database is down');
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    const ids = await f.publish(
      prefix,
      Array.from({ length: 8 }, (_, i) => ({ tenantId: `t${i % 4}`, eventType: 'order.created' })),
    );
    await waitFor(() => dlq.messages.length >= ids.length, { timeoutMs: 30_000, message: 'every event in the DLQ' });
    for (const id of ids) expect(calls.get(id), `attempts of ${id}`).toBe(1 + retryConfig.maxRetries);
    expect(dlq.messages.map((m) => m.headers[DLQ_HEADER.errorClass])).toEqual(ids.map(() => 'Error'));
  });

  it('with tenantCircuitBreaker: false, a failing tenant gets every attempt while the others succeed', async () => {
    const prefix = f.prefix();
    const groupId = f.group('off');
    let badCalls = 0;
    const consumer = await f.consumer({ groupId, routing: { prefix }, retryConfig, tenantCircuitBreaker: false }, [
      {
        eventTypes: ['order.*'],
        handler: async (event) => {
          if (event.tenantId !== 'bad') return;
          badCalls++;
          throw new Error('fails');
        },
      },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    await f.publish(prefix, [{ tenantId: 'good', eventType: 'order.created' }]);
    const events = Array.from({ length: 10 }, (_, i) => ({ tenantId: i % 2 ? 'good' : 'bad', eventType: 'order.created' }));
    await f.publish(prefix, events);
    await waitFor(() => dlq.messages.length >= 5, { timeoutMs: 30_000, message: "bad's events in the DLQ" });
    expect(badCalls).toBe(5 * (1 + retryConfig.maxRetries));
    expect(dlq.messages.every((m) => m.headers[DLQ_HEADER.errorClass] === 'Error')).toBe(true);
  });

  it('does not count NonRetriable failures: a tenant sending bad events keeps its circuit closed', async () => {
    const prefix = f.prefix();
    const groupId = f.group('bad-events');
    const { lines, logger } = recordingLogger();
    const consumer = await f.consumer(
      { groupId, routing: { prefix }, retryConfig, logger, tenantCircuitBreaker: { failureThreshold: 2, minStreakMs: 0, openMs: 60_000 } },
      [
        {
          eventTypes: ['order.*'],
          handler: async (event) => {
            if (event.tenantId === 'bad') throw new NonRetriableError('the payload lacks an order id');
          },
        },
      ],
    );
    const dlq = await f.collect([consumer.options.dlqTopic]);
    for (let i = 0; i < 8; i++) {
      await f.publish(prefix, [
        { tenantId: 'good', eventType: 'order.created' },
        { tenantId: 'bad', eventType: 'order.created' },
      ]);
    }
    await waitFor(() => dlq.messages.length >= 8, { timeoutMs: 30_000, message: "bad's events in the DLQ" });
    expect(dlq.messages.map((m) => m.headers[DLQ_HEADER.errorClass])).toEqual(Array(8).fill('NonRetriableError'));
    expect(lines.filter((l) => l.message.startsWith('tenant circuit'))).toEqual([]);
  });

  it("in-order mode: the failing tenant's partition goes on once its circuit opens, its later events dead-lettered without a call", async () => {
    const prefix = f.prefix();
    const groupId = f.group('in-order');
    const { lines, logger } = recordingLogger();
    let badCalls = 0;
    const handledGood = new Set<string>();
    const consumer = await f.consumer(
      {
        groupId,
        routing: { prefix },
        mode: 'in-order',
        retryConfig: { maxRetries: 20, initialDelayMs: 100, backoffMultiplier: 1, maxDelayMs: 100 },
        logger,
        tenantCircuitBreaker: { failureThreshold: 3, minStreakMs: 0, openMs: 60_000 },
      },
      [
        {
          eventTypes: ['order.*'],
          handler: async (event) => {
            if (event.tenantId !== 'bad') return void handledGood.add(event.id);
            badCalls++;
            throw new Error('tenant bad: its database refuses connections');
          },
        },
      ],
    );
    const dlq = await f.collect([consumer.options.dlqTopic]);
    await f.publish(prefix, [{ tenantId: 'good', eventType: 'order.created' }]);
    const badIds = await f.publish(
      prefix,
      Array.from({ length: 5 }, () => ({ tenantId: 'bad', eventType: 'order.created' })),
    );
    // Other tenants keep succeeding (on other partitions) while bad's first event retries in place.
    const goodIds: string[] = [];
    const feeding = (async () => {
      while (dlq.messages.length < badIds.length && goodIds.length < 200) {
        goodIds.push(...(await f.publish(prefix, [{ tenantId: `good-${goodIds.length % 5}`, eventType: 'order.created' }])));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await waitFor(() => dlq.messages.length >= badIds.length, { timeoutMs: 30_000, message: "bad's events in the DLQ" });
    await feeding;
    // Without the circuit: 21 attempts of the first event, and its partition held for 2 s per event.
    expect(badCalls).toBeLessThan(21);
    expect(dlq.messages.map((m) => m.headers.ce_id)).toEqual(badIds);
    expect(dlq.messages.slice(1).every((m) => m.headers[DLQ_HEADER.errorClass] === CIRCUIT_OPEN)).toBe(true);
    expect(lines.filter((l) => l.level === 'warn' && l.message.startsWith('tenant circuit opened'))).toHaveLength(1);
    await waitFor(() => goodIds.every((id) => handledGood.has(id)), { timeoutMs: 10_000, message: 'the other tenants handled' });
  });
});
