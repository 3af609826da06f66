import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, trace, type SpanContext } from '@opentelemetry/api';
import { sql } from 'drizzle-orm';
import { encodeEvent, HEADER, TopicRouter, type StoredEvent } from '@eventbus/core';
import { waitFor } from '@eventbus/dev-services';
import { InstrumentedPublisher } from '@eventbus/kafka';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay } from '@eventbus/relay';
import { installTestTelemetry, type ReadableSpan, type TestTelemetry } from '@eventbus/telemetry/testing';
import { consumerFixture } from './consumer-fixture.js';

// One trace from the producer's request to the consumer's handler, over real Postgres and
// Kafka: the producer stores the trace context with the event, the relay's `send` span
// continues it and injects `traceparent`, the consumer's `process` span continues that.

let telemetry: TestTelemetry;
let f: Awaited<ReturnType<typeof consumerFixture>>;
let relay: OutboxRelay;
let prefix: string;
let groupId: string;
const handled: Array<{ eventId: string; attempt: number; active: SpanContext | undefined; userSpan: SpanContext }> = [];

beforeAll(async () => {
  // Before the relay and consumer exist: their tracers and meters bind at construction.
  telemetry = installTestTelemetry();
  f = await consumerFixture('tracing');
  prefix = f.prefix();
  groupId = f.group('billing');
  relay = new OutboxRelay({ connectionString: f.database.url, brokers: f.brokers, routing: { prefix }, pollIntervalMs: 200, rebalanceIntervalMs: 300 });
  await relay.start();
  await f.consumer({ groupId, routing: { prefix }, retryConfig: { maxRetries: 1, initialDelayMs: 100 } }, [
    {
      eventTypes: ['order.*'],
      name: 'invoices',
      handler: async (event, ctx) => {
        const active = trace.getActiveSpan()?.spanContext();
        // User code's own span: it must nest under the process span.
        const userSpan = trace.getTracer('billing-app').startSpan('write invoice');
        handled.push({ eventId: event.id, attempt: ctx.attempt, active, userSpan: userSpan.spanContext() });
        userSpan.end();
        if (event.eventType === 'order.rejected') throw new Error('card declined');
      },
    },
  ]);
});
afterAll(async () => {
  await relay?.stop();
  await f?.close();
  await telemetry?.uninstall();
});

/** Writes one event in a Drizzle transaction inside a request span; returns the request span's context and the event id. */
async function writeInRequestSpan(eventType: string): Promise<{ request: SpanContext; eventId: string }> {
  return trace.getTracer('orders-api').startActiveSpan('POST /orders', async (span) => {
    try {
      const { eventLogId } = await f.db.transaction((tx) =>
        new EventWriter(tx).writeEventWithOutbox({ tenantId: 'tenant-1', eventKey: `order-${Math.random()}`, eventType, payload: { total: 12 } }),
      );
      return { request: span.spanContext(), eventId: eventLogId };
    } finally {
      span.end();
    }
  });
}

function spansOf(traceId: string): ReadableSpan[] {
  return telemetry.spans().filter((s) => s.spanContext().traceId === traceId);
}

function only(spans: ReadableSpan[], predicate: (s: ReadableSpan) => boolean, what: string): ReadableSpan {
  const found = spans.filter(predicate);
  if (found.length !== 1) throw new Error(`expected one ${what}, found ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0]!;
}

describe('tracing across producer → relay → Kafka → consumer', () => {
  it('puts the producer span, the send span, the process span and the handler in one trace, chained parent to child', async () => {
    const { request, eventId } = await writeInRequestSpan('order.placed');
    const topic = `${prefix}order`;
    // The process span ends after the handler returns: wait for it, not just the handler. And
    // for the send span: it ends when the relay has Kafka's acknowledgement, which can reach the
    // relay after the consumer has already fetched and handled the message.
    const spans = await waitFor(
      () => {
        const s = spansOf(request.traceId);
        return s.some((x) => x.name === `process ${topic}`) && s.some((x) => x.name === `send ${topic}`) ? s : undefined;
      },
      { timeoutMs: 45_000, message: 'the process and send spans' },
    );

    const handler = handled.find((h) => h.eventId === eventId)!;
    expect(handler.active?.traceId).toBe(request.traceId);

    const send = only(spans, (s) => s.name === `send ${topic}`, 'send span');
    expect(send.kind).toBe(SpanKind.PRODUCER);
    expect(send.parentSpanContext?.spanId).toBe(request.spanId);
    expect(send.attributes).toMatchObject({ 'messaging.system': 'kafka', 'messaging.destination.name': topic, 'cloudevents.event_id': eventId });

    const processSpan = only(spans, (s) => s.name === `process ${topic}`, 'process span');
    expect(processSpan.kind).toBe(SpanKind.CONSUMER);
    expect(processSpan.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(processSpan.spanContext().spanId).toBe(handler.active?.spanId);
    expect(processSpan.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(processSpan.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': topic,
      'messaging.kafka.message.key': 'tenant-1',
      'messaging.consumer.group.name': groupId,
      'cloudevents.event_type': 'order.placed',
      'eventbus.tenant.id': 'tenant-1',
      'eventbus.attempt': 1,
      'eventbus.subscription': 'invoices',
    });
    expect(typeof processSpan.attributes['messaging.kafka.offset']).toBe('number');
    expect(processSpan.attributes['messaging.destination.partition.id']).toMatch(/^\d+$/);
    expect(processSpan.attributes).not.toHaveProperty('eventbus.replayed');

    const userSpan = only(spans, (s) => s.name === 'write invoice', 'user span');
    expect(userSpan.parentSpanContext?.spanId).toBe(processSpan.spanContext().spanId);

    const metrics = await telemetry.prometheus.text();
    expect(metrics).toMatch(new RegExp(`^eventbus_events_published_total\\{stage="relay",event_type="order.placed",topic="${topic}"\\} [1-9]`, 'm'));
    expect(metrics).toMatch(new RegExp(`^eventbus_events_consumed_total\\{event_type="order.placed",group="${groupId}"\\} [1-9]`, 'm'));
    expect(metrics).toMatch(new RegExp(`^eventbus_events_end_to_end_latency_ms_count\\{event_type="order.placed",group="${groupId}"\\} [1-9]`, 'm'));
    // The relay observes its latency after its commit, which may come after the consumer's handler.
    await waitFor(async () => /^eventbus_relay_publish_latency_ms_count [1-9]/m.test(await telemetry.prometheus.text()), {
      message: 'the relay latency histogram',
    });
  });

  it('records a retry and the DLQ move as span events, every attempt in the producer trace', async () => {
    const { request, eventId } = await writeInRequestSpan('order.rejected');
    const processSpans = await waitFor(
      () => {
        const s = spansOf(request.traceId).filter((x) => x.name.startsWith('process '));
        return s.length >= 2 && s.every((x) => x.events.some((e) => e.name.startsWith('eventbus.'))) ? s : undefined;
      },
      { timeoutMs: 45_000, message: 'two process spans with their retry and DLQ events' },
    );
    expect(handled.filter((h) => h.eventId === eventId).map((h) => h.attempt)).toEqual([1, 2]);

    const [first, second] = [...processSpans].sort((a, b) => Number(a.attributes['eventbus.attempt']) - Number(b.attributes['eventbus.attempt']));
    expect(first!.name).toBe(`process ${prefix}order`);
    expect(first!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'card declined' });
    expect(first!.events.map((e) => e.name)).toEqual(['exception', 'eventbus.retry_scheduled']);
    expect(first!.events[1]!.attributes).toMatchObject({ 'eventbus.retry.attempt': 2, 'eventbus.retry.delay_ms': 100 });
    // The retry arrives through the group's retry topic, still a child of the relay's send span.
    expect(second!.name).toBe(`process ${prefix}retry.${groupId}`);
    expect(second!.parentSpanContext?.spanId).toBe(first!.parentSpanContext?.spanId);
    expect(second!.events.map((e) => e.name)).toEqual(['exception', 'eventbus.dead_lettered']);
    expect(second!.events[1]!.attributes).toMatchObject({ 'eventbus.dlq.topic': `${prefix}dlq.${groupId}`, 'eventbus.attempts': 2 });

    const metrics = await telemetry.prometheus.text();
    expect(metrics).toMatch(new RegExp(`^eventbus_events_failed_total\\{event_type="order.rejected",group="${groupId}",stage="consumer"\\} 1$`, 'm'));
    expect(metrics).toMatch(new RegExp(`^eventbus_events_dead_lettered_total\\{event_type="order.rejected",group="${groupId}",stage="consumer"\\} 1$`, 'm'));
  });

  it('marks a replayed event on the send and process spans, in the replay command’s trace, linked to the original', async () => {
    const { request, eventId } = await writeInRequestSpan('order.placed');
    await waitFor(() => handled.some((h) => h.eventId === eventId), { timeoutMs: 45_000, message: 'the first delivery' });

    // What the replay command does (packages/replay is written elsewhere): republish the
    // stored event with a replay id, through the instrumented publisher, inside its own span.
    const { rows } = await f.db.execute(sql`SELECT * FROM eventbus.event_log WHERE id = ${eventId}`);
    const row = rows[0] as Record<string, any>;
    const stored: StoredEvent = {
      id: row.id,
      tenantId: row.tenant_id,
      projectId: row.project_id,
      eventKey: row.event_key,
      eventType: row.event_type,
      version: row.event_version,
      payloadJson: JSON.stringify(row.payload),
      correlationId: row.correlation_id,
      causationId: row.causation_id,
      createdAt: new Date(row.created_at),
      traceparent: row.traceparent,
      tracestate: row.tracestate,
    };
    expect(stored.traceparent).toContain(request.traceId);
    const replayPublisher = new InstrumentedPublisher(f.publisher, { stage: 'replay', parent: 'active' });
    const replayTrace = await trace.getTracer('eventbus-cli').startActiveSpan('eventbus replay', async (span) => {
      const topic = new TopicRouter({ prefix }).topicFor(stored.eventType);
      await replayPublisher.publish([{ topic, ...encodeEvent(stored, { [HEADER.replayId]: 'replay-test-1' }) }]);
      span.end();
      return span.spanContext().traceId;
    });

    const processSpan = await waitFor(() => spansOf(replayTrace).find((s) => s.name.startsWith('process ')), {
      timeoutMs: 45_000,
      message: 'the replayed process span',
    });
    expect(processSpan.attributes).toMatchObject({ 'eventbus.replayed': true, 'eventbus.replay.id': 'replay-test-1', 'cloudevents.event_id': eventId });
    const send = only(spansOf(replayTrace), (s) => s.name.startsWith('send '), 'replay send span');
    expect(send.attributes).toMatchObject({ 'eventbus.replayed': true });
    expect(send.links.map((l) => l.context.traceId)).toEqual([request.traceId]);
    expect(processSpan.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    // The original delivery stays unmarked.
    const original = only(spansOf(request.traceId), (s) => s.name.startsWith('process '), 'original process span');
    expect(original.attributes).not.toHaveProperty('eventbus.replayed');
    expect(await telemetry.prometheus.text()).toMatch(/^eventbus_events_published_total\{stage="replay",event_type="order.placed",topic="[^"]+"\} 1$/m);
  });
});
