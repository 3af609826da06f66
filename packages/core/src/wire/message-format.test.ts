import { describe, expect, it } from 'vitest';
import { EventBusError } from '../errors.js';
import { decodeEvent, encodeEvent, HEADER, SOURCE_PATH, STRUCTURED_CONTENT_TYPE, tenantSource, type StoredEvent } from './message-format.js';

/**
 * RFC 3986 `relative-ref` with a `path-absolute` and neither query nor fragment: what
 * `ce_source` must be. Written from the RFC's ABNF (pchar = unreserved / pct-encoded /
 * sub-delims / ":" / "@"), not from the encoder.
 */
const PCHAR = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})";
const PATH_ABSOLUTE = new RegExp(`^/(?:${PCHAR}+(?:/${PCHAR}*)*)?$`);

/** Tenant ids the producer accepts (validate-event: non-blank, no NUL, at most 128 chars). */
const AWKWARD_TENANTS = [
  'acme corp',
  '100%',
  '50%25',
  'a|b',
  '<script>',
  'back\\slash',
  'frag#ment',
  'que?ry',
  'a/b',
  'a+b',
  'a;b=c',
  "o'brien",
  'münchen',
  '東京',
  'emoji 😀',
  'tab\tnew\nline',
  ' leading',
  '%E2%82%AC',
  '...',
  '~_.-',
  '"quoted"',
  '[v6]',
  '{x}',
  '`',
  '^',
];

describe('tenantSource', () => {
  it.each(AWKWARD_TENANTS)('makes a URI-reference path of %j that decodes back to it', (tenant) => {
    const source = tenantSource(tenant);
    expect(source).toMatch(PATH_ABSOLUTE);
    expect(source.startsWith(SOURCE_PATH)).toBe(true);
    const segment = source.slice(SOURCE_PATH.length);
    expect(segment).not.toContain('/');
    expect(decodeURIComponent(segment)).toBe(tenant);
    // A WHATWG URL parser keeps it as one path with no query or fragment.
    const url = new URL(source, 'https://example.test');
    expect([url.pathname, url.search, url.hash]).toEqual([source, '', '']);
  });

  it('encodes the examples of the report exactly (upper-case hex, UTF-8 bytes)', () => {
    expect(tenantSource('acme corp')).toBe('/tenants/acme%20corp');
    expect(tenantSource('a%b|c<d>e\\f')).toBe('/tenants/a%25b%7Cc%3Cd%3Ee%5Cf');
    expect(tenantSource('x#y?z')).toBe('/tenants/x%23y%3Fz');
    expect(tenantSource('a+b')).toBe('/tenants/a%2Bb');
    expect(tenantSource('ü')).toBe('/tenants/%C3%BC');
    expect(tenantSource('tenant-1.eu_2~x')).toBe('/tenants/tenant-1.eu_2~x');
  });

  it('keeps . and .. from being dot-segments', () => {
    expect(tenantSource('.')).toBe('/tenants/%2E');
    expect(tenantSource('..')).toBe('/tenants/%2E%2E');
    for (const tenant of ['.', '..']) expect(decodeURIComponent(tenantSource(tenant).slice(SOURCE_PATH.length))).toBe(tenant);
  });

  it('encodes a lone surrogate as U+FFFD instead of throwing like encodeURIComponent', () => {
    expect(tenantSource('a\uD800b')).toBe('/tenants/a%EF%BF%BDb');
  });

  it('holds for 2,000 random tenant ids over ASCII 1-127 and some non-ASCII characters', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const alphabet = [...Array.from({ length: 127 }, (_, i) => String.fromCharCode(i + 1)), 'é', 'ß', '中', '😀', '\u00a0', '\u2028'];
    for (let n = 0; n < 2000; n++) {
      const length = 1 + Math.floor(random() * 20);
      const tenant = Array.from({ length }, () => alphabet[Math.floor(random() * alphabet.length)]).join('');
      const source = tenantSource(tenant);
      expect(source, JSON.stringify(tenant)).toMatch(PATH_ABSOLUTE);
      expect(decodeURIComponent(source.slice(SOURCE_PATH.length))).toBe(tenant);
    }
  });
});

const stored: StoredEvent = {
  id: '0190a0b0-0000-7000-8000-000000000001',
  tenantId: 'acme corp #1',
  projectId: null,
  eventKey: 'k',
  eventType: 'order.placed',
  version: 2,
  payloadJson: '{"a":1}',
  correlationId: 'c',
  causationId: null,
  createdAt: new Date('2026-01-02T03:04:05.678Z'),
  traceparent: null,
  tracestate: null,
};

describe('encodeEvent', () => {
  it('puts the encoded source in ce_source and the tenant id as is in ce_tenantid and the key', () => {
    const wire = encodeEvent(stored);
    expect(wire.headers[HEADER.source]).toBe('/tenants/acme%20corp%20%231');
    expect(wire.headers[HEADER.tenantId]).toBe('acme corp #1');
    expect(wire.key).toBe('acme corp #1');
  });
});

/** Expects an UNDECODABLE_MESSAGE, not retriable, whose message matches `pattern`. */
function expectUndecodable(run: () => unknown, pattern: RegExp): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(EventBusError);
  expect((thrown as EventBusError).code).toBe('UNDECODABLE_MESSAGE');
  expect((thrown as EventBusError).retriable).toBe(false);
  expect((thrown as EventBusError).message).toMatch(pattern);
}

const binary = {
  ce_specversion: '1.0',
  ce_id: 'e-1',
  ce_type: 'order.placed',
  ce_source: '/x',
  ce_time: '2026-01-02T03:04:05Z',
  ce_tenantid: 't-1',
  'content-type': 'application/json',
};

describe('decodeEvent, binary mode', () => {
  it('reads the tenant from ce_tenantid, not from the source', () => {
    const wire = encodeEvent(stored);
    const event = decodeEvent(Buffer.from(wire.value), { ...wire.headers, [HEADER.source]: '/tenants/someone-else' });
    expect(event).toMatchObject({ tenantId: 'acme corp #1', id: stored.id, version: 2, payload: { a: 1 }, createdAt: stored.createdAt });
  });

  it('gives missing optional extensions their defaults (an event from another SDK)', () => {
    const event = decodeEvent('{"x":true}', binary);
    expect(event).toMatchObject({ projectId: null, eventKey: 'e-1', version: 1, correlationId: 'e-1', causationId: null, payload: { x: true } });
  });

  it('treats empty optional extensions as missing', () => {
    expect(decodeEvent('1', { ...binary, ce_projectid: '', ce_causationid: '' })).toMatchObject({ projectId: null, causationId: null });
  });

  it.each([
    ['2026-01-02T05:04:05+02:00', '2026-01-02T03:04:05.000Z'],
    ['2026-01-02T03:04:05.123456789Z', '2026-01-02T03:04:05.123Z'],
    ['2026-01-02t03:04:05z', '2026-01-02T03:04:05.000Z'],
  ])('reads ce_time %s', (time, iso) => {
    expect(decodeEvent('{}', { ...binary, ce_time: time }).createdAt.toISOString()).toBe(iso);
  });

  it.each(['1', '2026-01-02', '2026-01-02T03:04:05', 'Fri, 02 Jan 2026 03:04:05 GMT', '2026-02-30T00:00:00Z'])(
    'refuses ce_time %j, naming the header',
    (time) => {
      expectUndecodable(() => decodeEvent('{}', { ...binary, ce_time: time }), /header ce_time is not an RFC 3339 date-time/);
    },
  );

  it('takes createdAt from the record timestamp when ce_time is absent (time is optional in CloudEvents)', () => {
    const { ce_time: _, ...noTime } = binary;
    expect(decodeEvent('{}', noTime, { timestamp: 1_767_323_045_000 }).createdAt.toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expectUndecodable(() => decodeEvent('{}', noTime), /header ce_time is missing and the record has no timestamp/);
  });

  it('dead-letters an event without the tenant extension, saying how to fix it', () => {
    const { ce_tenantid: _, ...noTenant } = binary;
    expectUndecodable(() => decodeEvent('{}', noTenant), /header ce_tenantid is missing: every event needs the CloudEvents extension "tenantid"/);
  });

  it.each([
    ['ce_id', /header ce_id is missing/],
    ['ce_type', /header ce_type is missing/],
  ])('refuses an event without %s', (name, pattern) => {
    const headers: Record<string, string> = { ...binary };
    delete headers[name];
    expectUndecodable(() => decodeEvent('{}', headers), pattern);
  });

  it('refuses other spec versions and non-integer versions', () => {
    expectUndecodable(() => decodeEvent('{}', { ...binary, ce_specversion: '0.3' }), /ce_specversion is "0.3"; only CloudEvents 1.0/);
    expectUndecodable(() => decodeEvent('{}', { ...binary, ce_eventversion: '2.0' }), /ce_eventversion is not an integer >= 1: "2.0"/);
    expectUndecodable(() => decodeEvent('{}', { ...binary, ce_eventversion: '0' }), /ce_eventversion is not an integer >= 1/);
  });

  it('accepts JSON content types with parameters or a +json suffix, and a Content-Type header in any case', () => {
    expect(decodeEvent('[1]', { ...binary, 'content-type': 'application/json; charset=utf-8' }).payload).toEqual([1]);
    expect(decodeEvent('[2]', { ...binary, 'content-type': 'application/vnd.acme+json' }).payload).toEqual([2]);
    const { 'content-type': _, ...noType } = binary;
    expect(decodeEvent('[3]', noType).payload).toEqual([3]);
    expectUndecodable(() => decodeEvent('hello', { ...noType, 'Content-Type': 'text/plain' }), /content-type text\/plain is not JSON/);
  });

  it('refuses a non-JSON content type, a value that is not JSON and no value', () => {
    expectUndecodable(() => decodeEvent('<a/>', { ...binary, 'content-type': 'application/xml' }), /content-type application\/xml is not JSON/);
    expectUndecodable(() => decodeEvent('{', binary), /the value is not JSON/);
    expectUndecodable(() => decodeEvent(null, binary), /no value/);
  });
});

/** A structured-mode event as the CloudEvents SDKs write it. */
function structured(event: Record<string, unknown>, contentType = STRUCTURED_CONTENT_TYPE) {
  return { value: Buffer.from(JSON.stringify(event)), headers: { 'content-type': contentType } };
}

const sdkEvent = {
  specversion: '1.0',
  id: 'e-2',
  type: 'order.placed',
  source: 'https://shop.example/orders',
  time: '2026-01-02T05:04:05.5+02:00',
  datacontenttype: 'application/json',
  tenantid: 'acme corp',
  projectid: 'p-1',
  eventkey: 'order-9',
  eventversion: 3,
  correlationid: 'corr',
  causationid: 'cause',
  data: { total: 12.5, items: ['a'] },
};

describe('decodeEvent, structured mode', () => {
  it('reads the whole event from the value, the payload from data', () => {
    const { value, headers } = structured(sdkEvent, 'application/cloudevents+json; charset=UTF-8');
    expect(decodeEvent(value, headers)).toEqual({
      id: 'e-2',
      tenantId: 'acme corp',
      projectId: 'p-1',
      eventKey: 'order-9',
      eventType: 'order.placed',
      version: 3,
      payload: { total: 12.5, items: ['a'] },
      correlationId: 'corr',
      causationId: 'cause',
      createdAt: new Date('2026-01-02T03:04:05.500Z'),
      headers,
    });
  });

  it('reads the payload from data_base64', () => {
    const { data: _, ...rest } = sdkEvent;
    const { value, headers } = structured({ ...rest, data_base64: Buffer.from('{"b64":true}').toString('base64') });
    expect(decodeEvent(value, headers).payload).toEqual({ b64: true });
  });

  it('gives an event without data the payload null, and without extensions their defaults', () => {
    const { value, headers } = structured({ specversion: '1.0', id: 'e-3', type: 'order.placed', source: '/s', tenantid: 't' }, STRUCTURED_CONTENT_TYPE);
    expect(decodeEvent(value, headers, { timestamp: 0 })).toMatchObject({
      payload: null,
      version: 1,
      eventKey: 'e-3',
      correlationId: 'e-3',
      projectId: null,
      createdAt: new Date(0),
    });
  });

  it('ignores binary-mode ce_ headers: the value is the event', () => {
    const { value, headers } = structured(sdkEvent);
    expect(decodeEvent(value, { ...headers, ce_tenantid: 'other', ce_id: 'other' })).toMatchObject({ tenantId: 'acme corp', id: 'e-2' });
  });

  it('dead-letters an event without the tenant extension, saying how to fix it', () => {
    const { tenantid: _, ...rest } = sdkEvent;
    const { value, headers } = structured(rest);
    expectUndecodable(() => decodeEvent(value, headers), /attribute tenantid is missing: every event needs the CloudEvents extension "tenantid"/);
  });

  it.each([
    ['data and data_base64', { ...sdkEvent, data_base64: 'e30=' }, /both data and data_base64/],
    ['data_base64 that is not base64', { ...sdkEvent, data: undefined, data_base64: 'not base64!' }, /data_base64 is not base64/],
    [
      'data_base64 that is not JSON',
      { ...sdkEvent, data: undefined, data_base64: Buffer.from('plain text').toString('base64') },
      /data_base64 does not decode to JSON/,
    ],
    ['datacontenttype text/xml', { ...sdkEvent, datacontenttype: 'text/xml', data: '<a/>' }, /datacontenttype text\/xml is not JSON/],
    ['a date as time', { ...sdkEvent, time: '2026-01-02' }, /attribute time is not an RFC 3339 date-time/],
    ['no specversion', { ...sdkEvent, specversion: undefined }, /attribute specversion is missing/],
    ['specversion 0.3', { ...sdkEvent, specversion: '0.3' }, /attribute specversion is "0.3"/],
    ['an object as tenantid', { ...sdkEvent, tenantid: { id: 1 } }, /attribute tenantid is a JSON object/],
    ['eventversion 1.5', { ...sdkEvent, eventversion: 1.5 }, /attribute eventversion is not an integer >= 1: "1.5"/],
    ['an empty id', { ...sdkEvent, id: '' }, /attribute id is missing/],
  ])('refuses %s', (_label, event, pattern) => {
    const { value, headers } = structured(event);
    expectUndecodable(() => decodeEvent(value, headers), pattern);
  });

  it('refuses a value that is not one JSON object, and batch mode', () => {
    expectUndecodable(() => decodeEvent('{', { 'content-type': STRUCTURED_CONTENT_TYPE }), /not JSON \(structured mode/);
    expectUndecodable(() => decodeEvent('[{}]', { 'content-type': STRUCTURED_CONTENT_TYPE }), /not a JSON object/);
    expectUndecodable(() => decodeEvent(null, { 'content-type': STRUCTURED_CONTENT_TYPE }), /structured mode carries the event in the value/);
    expectUndecodable(() => decodeEvent('[]', { 'content-type': 'application/cloudevents-batch+json' }), /send one event per record/);
  });
});
