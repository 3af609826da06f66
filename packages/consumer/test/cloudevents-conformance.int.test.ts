import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloudEvent, Kafka as CloudEventsKafka, type KafkaMessage } from 'cloudevents';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { createTopics, waitFor, type CollectedMessage } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay } from '@eventbus/relay';
import { DLQ_HEADER, type ConsumedEvent } from '../src/index.js';
import { consumerFixture } from './consumer-fixture.js';

/**
 * Conformance with an independent CloudEvents implementation, the `cloudevents` npm SDK
 * (its Kafka binding), in both directions over the real broker: what the relay publishes
 * decodes in the SDK; what the SDK produces (binary and structured mode) the EventConsumer
 * reads. The project's own decoder is not used on the relay's records.
 */

let f: Awaited<ReturnType<typeof consumerFixture>>;
let producer: Producer;
beforeAll(async () => {
  f = await consumerFixture('cloudevents');
  producer = new Kafka({ brokers: f.brokers, clientId: 'cloudevents-sdk-producer', logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
});
afterEach(async () => f.reset());
afterAll(async () => {
  await producer?.disconnect();
  await f?.close();
});

/** Tenant ids the producer accepts that are not URI-safe as they are. */
const TENANTS = ['acme corp', '100%', 'a|b', '<tag>', 'back\\slash', 'frag#ment', 'que?ry', 'a/b', 'a+b', 'münchen 東京 😀', '..', 'plain-tenant'];

/** RFC 3986 relative-ref, path-absolute, without query or fragment (from the RFC's ABNF). */
const PCHAR = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})";
const PATH_ABSOLUTE = new RegExp(`^/(?:${PCHAR}+(?:/${PCHAR}*)*)?$`);

/** A record as the SDK's Kafka binding takes it. */
function sdkMessage(m: CollectedMessage): KafkaMessage<string> {
  return { key: m.key ?? '', value: m.value ?? '', body: m.value ?? '', headers: m.headers };
}

describe('CloudEvents conformance (cloudevents SDK, real Kafka)', () => {
  it('the SDK decodes every record the relay publishes: valid source that round-trips to the tenant, id, type, time and data', async () => {
    const prefix = f.prefix();
    const topic = `${prefix}order`;
    await createTopics(f.brokers, [{ topic }]);
    const collector = await f.collect([topic]);
    const writer = new EventWriter(f.db);
    const written = new Map<string, { tenantId: string; payload: unknown }>();
    for (const [i, tenantId] of TENANTS.entries()) {
      const payload = { n: i, tenant: tenantId, text: 'ünïcödé <&> "quoted"', nested: { list: [1, null, true] } };
      const result = await writer.writeEventWithOutbox({ tenantId, eventKey: `k-${i}`, eventType: 'order.placed', payload, version: 2, projectId: 'p 1' });
      written.set(result.eventLogId, { tenantId, payload });
    }
    const relay = new OutboxRelay({ connectionString: f.database.url, brokers: f.brokers, routing: { prefix }, pollIntervalMs: 200, rebalanceIntervalMs: 300 });
    await relay.start();
    try {
      await collector.waitForEvents(written.size, 20_000);
    } finally {
      await relay.stop();
    }
    const { rows } = await f.pool.query<{ id: string; created_at: Date }>('SELECT id::text AS id, created_at FROM eventbus.event_log');
    const createdAt = new Map(rows.map((r) => [r.id, r.created_at.toISOString()]));

    const decodedTenants: string[] = [];
    for (const record of collector.messages) {
      const decoded = CloudEventsKafka.toEvent(sdkMessage(record));
      expect(Array.isArray(decoded), 'one event per record (not batch mode)').toBe(false);
      const event = decoded as CloudEvent<unknown> & Record<string, unknown>;
      // The SDK's binding decodes without validating; its JSON-schema validation (uri-reference source, RFC 3339 time) is the check.
      expect(() => event.validate(), `record of tenant ${JSON.stringify(record.headers.ce_tenantid)}`).not.toThrow();
      const expected = written.get(event.id);
      expect(expected, `event ${event.id} was written`).toBeDefined();
      expect(event.specversion).toBe('1.0');
      expect(event.type).toBe('order.placed');
      expect(event.time).toBe(createdAt.get(event.id));
      expect(event.data).toEqual(expected!.payload);
      expect(event.tenantid).toBe(expected!.tenantId);
      expect(event.eventversion).toBe('2');
      expect(record.key).toBe(expected!.tenantId);
      // source: a URI-reference by RFC 3986 itself (stricter than the SDK's check), one path
      // for a WHATWG parser, and its last segment percent-decodes to the tenant id.
      expect(event.source).toMatch(PATH_ABSOLUTE);
      expect(event.source.startsWith('/tenants/')).toBe(true);
      expect(decodeURIComponent(event.source.slice('/tenants/'.length))).toBe(expected!.tenantId);
      if (expected!.tenantId !== '..') {
        // `..` is %2E%2E, which WHATWG URL (not RFC 3986) still reads as a dot-segment; docs/cloudevents.md says not to resolve the source.
        const url = new URL(event.source, 'https://bus.example');
        expect([url.pathname, url.search, url.hash]).toEqual([event.source, '', '']);
      }
      decodedTenants.push(expected!.tenantId);
    }
    expect(decodedTenants.sort()).toEqual([...TENANTS].sort());
  });

  it('the EventConsumer reads what the SDK produces in binary and structured mode, and dead-letters an event without the tenant extension', async () => {
    const prefix = f.prefix();
    const topic = `${prefix}order`;
    await createTopics(f.brokers, [{ topic }]);
    const sent: Array<{ id: string; tenantId: string; payload: unknown; time: string; mode: string }> = [];
    const records: Array<{ key: string; value: string | Buffer; headers: Record<string, string>; timestamp?: string }> = [];

    const sdkEvent = (mode: string, tenantId: string, i: number, extra: Record<string, unknown> = {}) => {
      const payload = { mode, i, tenant: tenantId };
      // Another SDK's clock and format: an offset and microseconds (RFC 3339, not toISOString's form).
      const time = `2026-01-02T0${i % 10}:04:05.123456+02:00`;
      const event = new CloudEvent({
        id: `${mode}-${i}-${prefix}`,
        type: 'order.placed',
        source: 'https://shop.example/orders',
        time,
        tenantid: tenantId,
        partitionkey: tenantId,
        data: payload,
        ...extra,
      });
      sent.push({ id: event.id, tenantId, payload, time: new Date(time).toISOString(), mode });
      return event;
    };
    for (const [i, tenantId] of TENANTS.entries()) {
      const binary = CloudEventsKafka.binary(sdkEvent('binary', tenantId, i));
      records.push({ key: String(binary.key), value: JSON.stringify(binary.value), headers: definedStrings(binary.headers) });
      const structured = CloudEventsKafka.structured(sdkEvent('structured', tenantId, i, { eventversion: 3 }));
      records.push({ key: String(structured.key), value: structured.value as string, headers: definedStrings(structured.headers) });
    }
    // data_base64: the SDK's form for binary data, here the JSON payload as bytes.
    const b64 = sdkEvent('base64', 'acme corp', 0);
    const b64Event = new CloudEvent({ ...b64, datacontenttype: 'application/json', data: Buffer.from(JSON.stringify(sent.at(-1)!.payload)) });
    const b64Record = CloudEventsKafka.structured(b64Event);
    expect(JSON.parse(b64Record.value as string)).toHaveProperty('data_base64');
    records.push({ key: 'acme corp', value: b64Record.value as string, headers: definedStrings(b64Record.headers) });
    // No time (optional in CloudEvents; Go and Java events often have none): createdAt is the record's timestamp.
    const untimed = CloudEventsKafka.binary(
      new CloudEvent({ id: `untimed-${prefix}`, type: 'order.placed', source: '/s', tenantid: 'no clock', data: { untimed: true } }),
    );
    const { ce_time: _, ...untimedHeaders } = definedStrings(untimed.headers);
    records.push({ key: 'no clock', value: JSON.stringify(untimed.value), headers: untimedHeaders, timestamp: String(Date.parse('2026-03-04T05:06:07.089Z')) });
    // No tenant extension, in each mode: dead-lettered, not guessed from the key.
    const anonymous = new CloudEvent({ id: `anonymous-${prefix}`, type: 'order.placed', source: '/s', data: {} });
    const anonymousBinary = CloudEventsKafka.binary(anonymous);
    records.push({ key: 'some-key', value: JSON.stringify(anonymousBinary.value), headers: definedStrings(anonymousBinary.headers) });
    records.push({
      key: 'some-key',
      value: CloudEventsKafka.structured(anonymous).value as string,
      headers: { 'content-type': 'application/cloudevents+json' },
    });

    const received: ConsumedEvent[] = [];
    const consumer = await f.consumer({ groupId: f.group('ce-sdk'), routing: { prefix } }, [
      { eventTypes: ['order.placed'], handler: async (event) => void received.push(event) },
    ]);
    const dlq = await f.collect([consumer.options.dlqTopic]);
    await producer.send({ topic, messages: records });

    const expectedCount = sent.length + 1;
    await waitFor(() => received.length >= expectedCount && dlq.messages.length >= 2, {
      timeoutMs: 30_000,
      message: () => `${expectedCount} events handled (have ${received.length}) and 2 dead letters (have ${dlq.messages.length})`,
    });
    const byId = new Map(received.map((e) => [e.id, e]));
    for (const s of sent) {
      const event = byId.get(s.id);
      expect(event, `${s.mode} event of tenant ${JSON.stringify(s.tenantId)}`).toBeDefined();
      expect(event).toMatchObject({ tenantId: s.tenantId, eventType: 'order.placed', payload: s.payload, createdAt: new Date(s.time) });
      expect(event!.version).toBe(s.mode === 'structured' ? 3 : 1);
      // Missing project extensions take their defaults.
      expect(event).toMatchObject({ projectId: null, eventKey: s.id, correlationId: s.id, causationId: null });
    }
    expect(byId.get(`untimed-${prefix}`)).toMatchObject({ tenantId: 'no clock', payload: { untimed: true }, createdAt: new Date('2026-03-04T05:06:07.089Z') });
    expect(received).toHaveLength(expectedCount);

    expect(dlq.messages).toHaveLength(2);
    for (const record of dlq.messages) {
      expect(record.key).toBe('some-key');
      expect(record.headers[DLQ_HEADER.errorMessage]).toMatch(/tenantid is missing: every event needs the CloudEvents extension "tenantid"/);
    }
    expect(dlq.messages.map((m) => m.headers[DLQ_HEADER.errorMessage]!.split(' ')[3]).sort()).toEqual(['attribute', 'header']);
  });
});

/**
 * The SDK's binary headers as Kafka header strings, without the attributes it leaves
 * undefined (it emits ce_subject, ce_schemaurl, ... even when unset; kafkajs cannot send
 * undefined, and another SDK would not send them).
 */
function definedStrings(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && value !== null) out[name] = String(value);
  return out;
}
