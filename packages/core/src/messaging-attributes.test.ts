import { describe, expect, it } from 'vitest';
import { TraceFlags } from '@opentelemetry/api';
import { encodeEvent, HEADER } from './wire/message-format.js';
import { bodySizeOf, messageSpanAttributes, SPAN_ATTR } from './messaging-attributes.js';
import { formatTraceparent, parseTraceparent } from './trace-context.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

describe('traceparent', () => {
  it('parses a W3C traceparent into a remote span context and formats it back', () => {
    const parsed = parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-01`, 'vendor=abc');
    expect(parsed).toMatchObject({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(parsed!.traceState!.get('vendor')).toBe('abc');
    expect(formatTraceparent(parsed!)).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
    expect(formatTraceparent({ ...parsed!, traceFlags: TraceFlags.NONE })).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`);
  });

  it.each([
    [undefined],
    [''],
    ['garbage'],
    [`01-${TRACE_ID}-${SPAN_ID}-01`], // unknown version
    [`00-${'0'.repeat(32)}-${SPAN_ID}-01`], // all-zero trace id is invalid
    [`00-${TRACE_ID}-${'0'.repeat(16)}-01`],
    [`00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`], // W3C requires lowercase hex
  ])('rejects %s', (header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });
});

describe('messageSpanAttributes', () => {
  const wire = encodeEvent({
    id: '0190a0b0-0000-7000-8000-000000000001',
    tenantId: 'tenant-7',
    projectId: null,
    eventKey: 'k-1',
    eventType: 'order.placed',
    version: 1,
    payloadJson: '{"total":12}',
    correlationId: 'c-1',
    causationId: null,
    createdAt: new Date('2026-01-01T00:00:00Z'),
    traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`,
    tracestate: null,
  });

  it('maps a message to the messaging and CloudEvents conventions plus tenant', () => {
    expect(messageSpanAttributes({ topic: 'eventbus.order', key: wire.key, headers: wire.headers, bodySize: bodySizeOf(wire.value) })).toEqual({
      'messaging.system': 'kafka',
      'messaging.destination.name': 'eventbus.order',
      'messaging.kafka.message.key': 'tenant-7',
      'messaging.message.body.size': 12,
      'messaging.message.id': '0190a0b0-0000-7000-8000-000000000001',
      'cloudevents.event_id': '0190a0b0-0000-7000-8000-000000000001',
      'cloudevents.event_type': 'order.placed',
      'cloudevents.event_source': '/tenants/tenant-7',
      'eventbus.tenant.id': 'tenant-7',
    });
  });

  it('marks a replayed message and leaves out a null key', () => {
    const attributes = messageSpanAttributes({ topic: 't', key: null, headers: { ...wire.headers, [HEADER.replayId]: 'replay-42' } });
    expect(attributes[SPAN_ATTR.replayed]).toBe(true);
    expect(attributes[SPAN_ATTR.replayId]).toBe('replay-42');
    expect(attributes).not.toHaveProperty(SPAN_ATTR.kafkaMessageKey);
    expect(messageSpanAttributes({ topic: 't', key: 'k', headers: wire.headers })).not.toHaveProperty(SPAN_ATTR.replayed);
  });

  it('counts UTF-8 bytes of a string body', () => {
    expect(bodySizeOf('é')).toBe(2);
    expect(bodySizeOf(Buffer.alloc(5))).toBe(5);
    expect(bodySizeOf(null)).toBeUndefined();
  });
});
