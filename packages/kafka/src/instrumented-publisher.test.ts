import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { HEADER, parseTraceparent } from '@eventbus/core';
import { installTestTelemetry, type TestTelemetry } from '@eventbus/telemetry/testing';
import { InstrumentedPublisher } from './instrumented-publisher.js';
import { PublishError, type MessagePublisher, type OutboundMessage } from './publisher.js';

const PRODUCER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PRODUCER_SPAN = '00f067aa0ba902b7';

/** Records what reached "Kafka"; fails when told to. */
class FakePublisher implements MessagePublisher {
  sent: OutboundMessage[][] = [];
  failWith: Error | undefined;
  async connect() {}
  async disconnect() {}
  async publish(messages: readonly OutboundMessage[]) {
    if (this.failWith) throw this.failWith;
    this.sent.push([...messages]);
  }
}

function message(overrides: Partial<OutboundMessage['headers']> = {}, topic = 'eventbus.order'): OutboundMessage {
  return {
    topic,
    key: 'tenant-1',
    value: '{"n":1}',
    headers: {
      [HEADER.id]: 'e-1',
      [HEADER.type]: 'order.placed',
      [HEADER.tenantId]: 'tenant-1',
      [HEADER.traceparent]: `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`,
      ...overrides,
    },
  };
}

let telemetry: TestTelemetry;
beforeEach(() => {
  telemetry = installTestTelemetry();
});
afterEach(async () => {
  await telemetry.uninstall();
});

describe('InstrumentedPublisher', () => {
  it("passes the inner publisher's refusals before a send on, and ends a failed send span for each refused message (it is not published)", () => {
    const tooLarge = new PublishError('rejected', 'message too large for topic eventbus.order', { reason: 'too-large' });
    const inner = Object.assign(new FakePublisher(), {
      refusalsBeforeSend: (messages: readonly OutboundMessage[]) => messages.map((_, i) => (i === 1 ? tooLarge : undefined)),
    });
    const publisher = new InstrumentedPublisher(inner, { stage: 'relay', parent: 'message' });
    expect(publisher.refusalsBeforeSend!([message(), message({ [HEADER.id]: 'e-2' })])).toEqual([undefined, tooLarge]);
    const spans = telemetry.spans();
    expect(spans).toHaveLength(1);
    expect(spans[0]!.name).toBe('send eventbus.order');
    expect(spans[0]!.status).toEqual({ code: SpanStatusCode.ERROR, message: tooLarge.message });
    expect(new InstrumentedPublisher(new FakePublisher(), { stage: 'relay', parent: 'message' }).refusalsBeforeSend).toBeUndefined();
  });

  it('sends each message in a PRODUCER span that continues the stored trace, and injects its traceparent', async () => {
    const inner = new FakePublisher();
    const publisher = new InstrumentedPublisher(inner, { stage: 'relay', parent: 'message' });
    const original = message();
    await publisher.publish([original, message({ [HEADER.id]: 'e-2' })]);

    const spans = telemetry.spans();
    expect(spans.map((s) => s.name)).toEqual(['send eventbus.order', 'send eventbus.order']);
    const [first] = spans;
    expect(first!.kind).toBe(SpanKind.PRODUCER);
    expect(first!.spanContext().traceId).toBe(PRODUCER_TRACE);
    expect(first!.parentSpanContext?.spanId).toBe(PRODUCER_SPAN);
    expect(first!.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.destination.name': 'eventbus.order',
      'messaging.kafka.message.key': 'tenant-1',
      'messaging.batch.message_count': 2,
      'cloudevents.event_type': 'order.placed',
      'eventbus.tenant.id': 'tenant-1',
    });
    // Kafka got the send span's context; the caller's message object is left as it was.
    const sentParent = parseTraceparent(inner.sent[0]![0]!.headers[HEADER.traceparent]);
    expect(sentParent).toMatchObject({ traceId: PRODUCER_TRACE, spanId: first!.spanContext().spanId });
    expect(original.headers[HEADER.traceparent]).toBe(`00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`);

    const text = await telemetry.prometheus.text();
    expect(text).toMatch(/^eventbus_events_published_total\{stage="relay",event_type="order.placed",topic="eventbus.order"\} 2$/m);
  });

  it('starts a new trace for a message without stored context, ignoring the ambient span (parent: message)', async () => {
    const inner = new FakePublisher();
    const publisher = new InstrumentedPublisher(inner, { stage: 'relay', parent: 'message' });
    await trace.getTracer('test').startActiveSpan('relay start', async (ambient) => {
      await publisher.publish([message({ [HEADER.traceparent]: undefined as unknown as string })]);
      ambient.end();
    });
    const send = telemetry.spans().find((s) => s.name.startsWith('send'))!;
    expect(send.parentSpanContext).toBeUndefined();
    expect(inner.sent[0]![0]!.headers[HEADER.traceparent]).toContain(send.spanContext().traceId);
  });

  it('parents a replay on the active span and links the stored context (parent: active); marks it replayed', async () => {
    const inner = new FakePublisher();
    const publisher = new InstrumentedPublisher(inner, { stage: 'replay', parent: 'active' });
    let commandTrace = '';
    await trace.getTracer('test').startActiveSpan('eventbus replay', async (command) => {
      commandTrace = command.spanContext().traceId;
      await publisher.publish([message({ [HEADER.replayId]: 'r-1' })]);
      command.end();
    });
    const send = telemetry.spans().find((s) => s.name.startsWith('send'))!;
    expect(send.spanContext().traceId).toBe(commandTrace);
    expect(send.links.map((l) => l.context.spanId)).toEqual([PRODUCER_SPAN]);
    expect(send.attributes).toMatchObject({ 'eventbus.replayed': true, 'eventbus.replay.id': 'r-1' });
  });

  it('ends the spans as errors and rethrows the PublishError unchanged; nothing counted', async () => {
    const inner = new FakePublisher();
    inner.failWith = new PublishError('rejected', 'too large');
    const publisher = new InstrumentedPublisher(inner, { stage: 'relay', parent: 'message' });
    await expect(publisher.publish([message()])).rejects.toBe(inner.failWith);
    const [send] = telemetry.spans();
    expect(send!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'too large' });
    expect(send!.attributes['error.type']).toBe('publish_rejected');
    expect(send!.events.map((e) => e.name)).toEqual(['exception']);
    expect(await telemetry.prometheus.text()).not.toMatch(/eventbus_events_published_total\{/);
  });

  it('on a partial failure, ends and counts the stored messages and gives each refused one its own error', async () => {
    const refusal = new PublishError('rejected', 'message too large for topic eventbus.order');
    const inner = new FakePublisher();
    inner.failWith = new PublishError('rejected', '1 of 2 message(s) refused', {
      positions: [{ topic: 'eventbus.order', partition: 0, offset: '7' }, undefined],
      refusals: [undefined, refusal],
    });
    const publisher = new InstrumentedPublisher(inner, { stage: 'relay', parent: 'message' });
    await expect(publisher.publish([message(), message({ [HEADER.id]: 'e-2' })])).rejects.toBe(inner.failWith);
    const [stored, refused] = telemetry.spans();
    expect(stored!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(refused!.status).toMatchObject({ code: SpanStatusCode.ERROR, message: 'message too large for topic eventbus.order' });
    expect(await telemetry.prometheus.text()).toMatch(/^eventbus_events_published_total\{stage="relay",event_type="order.placed",topic="eventbus.order"\} 1$/m);
  });
});
