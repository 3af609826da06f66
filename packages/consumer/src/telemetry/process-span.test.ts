import { describe, expect, it, vi } from 'vitest';
import { ROOT_CONTEXT, trace, type Span, type Tracer } from '@opentelemetry/api';
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
      const span = { isRecording: () => recording, setAttributes: vi.fn() } as unknown as Span;
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
});
