import { describe, expect, it, vi } from 'vitest';
import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, trace, TraceFlags, type Span, type Tracer } from '@opentelemetry/api';
import { HEADER } from '@eventbus/core';
import type { InboundMessage } from '@eventbus/kafka';
import { processParentContext, processSpanAttributes, startProcessSpan } from './process-span.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SEND_SPAN = '00f067aa0ba902b7';
const headers = {
  [HEADER.id]: 'e-1',
  [HEADER.type]: 'order.placed',
  [HEADER.source]: '/tenants/t-1',
  [HEADER.tenantId]: 't-1',
  [HEADER.traceparent]: `00-${TRACE}-${SEND_SPAN}-01`,
};
const message: InboundMessage = {
  topic: 'eventbus.retry.billing',
  partition: 4,
  offset: '1234',
  timestamp: 0,
  key: Buffer.from('t-1'),
  value: Buffer.from('{"a":1}'),
  headers: {},
};

describe('process span', () => {
  it('maps a delivery to the messaging conventions, tenant, event type, attempt and subscription', () => {
    expect(processSpanAttributes({ message, headers, groupId: 'billing', attempt: 2, subscription: 'invoices' })).toEqual({
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.operation.name': 'process',
      'messaging.destination.name': 'eventbus.retry.billing',
      'messaging.destination.partition.id': '4',
      'messaging.kafka.offset': 1234,
      'messaging.kafka.message.key': 't-1',
      'messaging.consumer.group.name': 'billing',
      'messaging.message.id': 'e-1',
      'messaging.message.body.size': 7,
      'cloudevents.event_id': 'e-1',
      'cloudevents.event_type': 'order.placed',
      'cloudevents.event_source': '/tenants/t-1',
      'eventbus.tenant.id': 't-1',
      'eventbus.attempt': 2,
      'eventbus.subscription': 'invoices',
    });
  });

  it('marks replayed events', () => {
    const attributes = processSpanAttributes({ message, headers: { ...headers, [HEADER.replayId]: 'r-9' }, groupId: 'g', attempt: 1 });
    expect(attributes).toMatchObject({ 'eventbus.replayed': true, 'eventbus.replay.id': 'r-9' });
  });

  it("continues the message's traceparent as parent, and the root context without one", () => {
    expect(trace.getSpanContext(processParentContext(headers))).toMatchObject({ traceId: TRACE, spanId: SEND_SPAN, isRemote: true });
    expect(processParentContext({ [HEADER.id]: 'e-1' })).toBe(ROOT_CONTEXT);
    expect(processParentContext({ [HEADER.traceparent]: 'not-a-traceparent' })).toBe(ROOT_CONTEXT);
  });

  it('starts a span with the sampling attributes only, and adds the rest only when it records', () => {
    const input = { message, headers, groupId: 'billing', attempt: 2, subscription: 'invoices' };
    for (const recording of [false, true]) {
      const span = { isRecording: () => recording, setAttributes: vi.fn(), spanContext: () => INVALID_SPAN_CONTEXT } as unknown as Span;
      const startSpan = vi.fn(() => span);
      startProcessSpan({ startSpan } as unknown as Tracer, input);
      expect(startSpan).toHaveBeenCalledWith(
        'process eventbus.retry.billing',
        expect.objectContaining({
          attributes: {
            'messaging.system': 'kafka',
            'messaging.operation.type': 'process',
            'messaging.destination.name': 'eventbus.retry.billing',
            'messaging.consumer.group.name': 'billing',
          },
        }),
        expect.anything(),
      );
      if (recording) expect(span.setAttributes).toHaveBeenCalledWith(processSpanAttributes(input));
      else expect(span.setAttributes).not.toHaveBeenCalled();
    }
  });

  it('runs the handler with the span active when it has a valid context, and in the parent context when it has none', () => {
    const valid = { traceId: TRACE, spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.NONE };
    for (const [spanContext, withTraceparent] of [
      [valid, false],
      [INVALID_SPAN_CONTEXT, true],
      [INVALID_SPAN_CONTEXT, false],
    ] as const) {
      const span = { isRecording: () => false, setAttributes: vi.fn(), spanContext: () => spanContext } as unknown as Span;
      const input = { message, headers: withTraceparent ? headers : { [HEADER.id]: 'e-1' }, groupId: 'billing', attempt: 1 };
      const { context } = startProcessSpan({ startSpan: () => span } as unknown as Tracer, input);
      if (spanContext === valid) expect(trace.getSpan(context)).toBe(span);
      else if (withTraceparent) expect(trace.getSpanContext(context)).toMatchObject({ traceId: TRACE, spanId: SEND_SPAN, isRemote: true });
      else expect(context).toBe(ROOT_CONTEXT);
    }
  });

  it('costs no context of its own without a tracer provider and a traceparent', () => {
    const { span, context } = startProcessSpan(trace.getTracer('test'), { message, headers: { [HEADER.id]: 'e-1' }, groupId: 'g', attempt: 1 });
    expect(span.isRecording()).toBe(false);
    expect(context).toBe(ROOT_CONTEXT);
  });
});
