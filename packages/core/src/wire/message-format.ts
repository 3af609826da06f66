import { EventBusError } from '../errors.js';
import { parseRfc3339 } from './rfc3339.js';

/**
 * The Kafka message format, per the CloudEvents Kafka protocol binding in binary mode:
 * the value is the plain JSON payload; the event's attributes are `ce_*` headers.
 * Extension attribute names are lowercase alphanumerics, as the CloudEvents spec requires.
 *
 * | header            | holds                                  |
 * |-------------------|----------------------------------------|
 * | ce_specversion    | `1.0`                                  |
 * | ce_id             | event id (uuid), stable across retries and replays |
 * | ce_type           | event type                             |
 * | ce_source         | `/tenants/{tenantId}`, the id percent-encoded as one path segment (`tenantSource`) |
 * | ce_time           | created-at, RFC 3339                   |
 * | ce_tenantid       | tenant id (also the message key)       |
 * | ce_projectid      | project id, when set                   |
 * | ce_eventkey       | the producer's idempotency key         |
 * | ce_eventversion   | payload schema version                 |
 * | ce_correlationid  | correlation id                         |
 * | ce_causationid    | causation id, when set                 |
 * | content-type      | `application/json`                     |
 * | traceparent, tracestate | the producer's W3C trace context |
 * | ce_replayid       | set only on republished (replayed) events |
 *
 * Consumers read the tenant from `ce_tenantid`, never by parsing `ce_source`.
 * `decodeEvent` also reads structured mode (`application/cloudevents+json`), as other
 * CloudEvents SDKs send it; docs/cloudevents.md is the contract for other languages.
 */
export const HEADER = {
  specVersion: 'ce_specversion',
  id: 'ce_id',
  type: 'ce_type',
  source: 'ce_source',
  time: 'ce_time',
  tenantId: 'ce_tenantid',
  projectId: 'ce_projectid',
  eventKey: 'ce_eventkey',
  version: 'ce_eventversion',
  correlationId: 'ce_correlationid',
  causationId: 'ce_causationid',
  contentType: 'content-type',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  replayId: 'ce_replayid',
} as const;

/**
 * The facts every event has, in every form it takes (declared once here; the forms below and
 * the producer's ValidatedEvent are derived from it): the EventLog row's columns, the payload aside.
 */
export interface EventFacts {
  id: string;
  tenantId: string;
  projectId: string | null;
  eventKey: string;
  eventType: string;
  version: number;
  correlationId: string;
  causationId: string | null;
  createdAt: Date;
}

/** An event as stored in the EventLog and as a consumer receives it. */
export interface BusEvent<Payload = unknown> extends EventFacts {
  payload: Payload;
}

/** The stored facts the relay reads to build a message; the payload stays serialized. */
export interface StoredEvent extends EventFacts {
  /** The JSON payload as text, exactly as it goes on the wire. */
  payloadJson: string;
  traceparent: string | null;
  tracestate: string | null;
}

/**
 * A StoredEvent from a row that selects eventbus.event_log's columns under their own names,
 * with `id::text AS id` and `payload::text AS payload_json` (the relay's claim and the
 * replay's page read both do).
 */
// biome-ignore lint/suspicious/noExplicitAny: a driver row (pg or drizzle) whose column types the SQL, not TypeScript, fixes
export function storedEventFromRow(r: Record<string, any>): StoredEvent {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    projectId: r.project_id,
    eventKey: r.event_key,
    eventType: r.event_type,
    version: r.event_version,
    payloadJson: r.payload_json,
    correlationId: r.correlation_id,
    causationId: r.causation_id,
    createdAt: r.created_at,
    traceparent: r.traceparent,
    tracestate: r.tracestate,
  };
}

export interface WireMessage {
  key: string;
  value: string | Buffer;
  headers: Record<string, string>;
}

/** The path `ce_source` starts with; the percent-encoded tenant id is the segment after it. */
export const SOURCE_PATH = '/tenants/';

/**
 * `ce_source` of a tenant's events: `/tenants/` and the tenant id as one RFC 3986 path
 * segment. Every UTF-8 byte outside the unreserved set (ALPHA DIGIT `-._~`) is
 * percent-encoded with upper-case hex, so the source is a URI-reference for any tenant id
 * the producer accepts (space, `%`, `|`, `<`, `\`, `#`, `?`, `/`, non-ASCII) and one
 * `decodeURIComponent` (Go `url.PathUnescape`, Java `URLDecoder`) gives the id back; `+`
 * is encoded too, so form decoders do not read it as a space. The ids `.` and `..` become
 * `%2E` and `%2E%2E`: left literal they would be dot-segments a resolver removes.
 * A lone UTF-16 surrogate is encoded as U+FFFD, as Postgres stored it.
 */
export function tenantSource(tenantId: string): string {
  if (tenantId === '.' || tenantId === '..') return SOURCE_PATH + '%2E'.repeat(tenantId.length);
  // Most tenant ids need no encoding: no Buffer and no string built byte by byte per event.
  if (ALL_UNRESERVED.test(tenantId)) return SOURCE_PATH + tenantId;
  let segment = '';
  for (const byte of Buffer.from(tenantId, 'utf8')) {
    segment += UNRESERVED[byte] ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return SOURCE_PATH + segment;
}

/** A string of RFC 3986 `unreserved` characters only (ASCII, so its UTF-8 bytes are the same). */
const ALL_UNRESERVED = /^[A-Za-z0-9\-._~]*$/;

/** RFC 3986 `unreserved`, indexed by byte. */
const UNRESERVED: readonly boolean[] = Array.from({ length: 256 }, (_, b) => b < 128 && /[A-Za-z0-9\-._~]/.test(String.fromCharCode(b)));

/** A header name of HEADER's. */
type HeaderName = (typeof HEADER)[keyof typeof HEADER];

export function encodeEvent(event: StoredEvent, extraHeaders?: Record<string, string>): WireMessage {
  // HEADER's names spelled out (the type checks them): V8 builds an object literal with
  // literal keys from one template, its fields in the object; computed keys
  // (`[HEADER.id]: ...`) it adds one by one, ~55 B more garbage per event relayed.
  const headers: Partial<Record<HeaderName, string>> = {
    ce_specversion: '1.0',
    ce_id: event.id,
    ce_type: event.eventType,
    ce_source: tenantSource(event.tenantId),
    ce_time: event.createdAt.toISOString(),
    ce_tenantid: event.tenantId,
    ce_eventkey: event.eventKey,
    ce_eventversion: String(event.version),
    ce_correlationid: event.correlationId,
    'content-type': 'application/json',
  };
  if (event.projectId !== null) headers[HEADER.projectId] = event.projectId;
  if (event.causationId !== null) headers[HEADER.causationId] = event.causationId;
  if (event.traceparent) headers[HEADER.traceparent] = event.traceparent;
  if (event.tracestate) headers[HEADER.tracestate] = event.tracestate;
  return {
    key: event.tenantId,
    value: event.payloadJson,
    headers: extraHeaders ? { ...headers, ...extraHeaders } : (headers as Record<string, string>),
  };
}

export type RawHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** Header values as strings (the last one when a header repeats). */
export function headersToStrings(raw: RawHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  // for-in, not Object.entries: no array of pairs per message (the consumer calls this for each).
  for (const name in raw) {
    const value = raw[name];
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}

/** A decoded event and all the record's headers (as strings). */
export type DecodedEvent = BusEvent & { headers: Record<string, string> };

/** Facts of the Kafka record an event may leave out. */
export interface RecordFacts {
  /** The record's timestamp, ms since the epoch: createdAt of an event without `time`. */
  timestamp?: number;
}

/** `content-type` of CloudEvents structured mode with the JSON event format. */
export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json';

/**
 * Decodes a record into an event, in either CloudEvents content mode: `content-type`
 * `application/cloudevents+json` (parameters such as `charset` aside) is structured mode,
 * anything else binary mode. Throws UNDECODABLE_MESSAGE, never retried (the bytes will not
 * change), with a message that says what is wrong:
 * - id, type or the `tenantid` extension missing. The tenant is never guessed from the key
 *   or the source: another producer may key by anything, and a wrong guess would run one
 *   tenant's event as another's.
 * - `time` not an RFC 3339 date-time; `specversion` other than 1.0;
 * - a payload that is not JSON (binary: the value; structured: `data` or `data_base64`).
 * `time` is optional in CloudEvents: without it createdAt is the record's timestamp, when
 * `record` gives one. Missing optional extensions get defaults: version 1, eventKey and
 * correlationId = the id, projectId and causationId null.
 */
export function decodeEvent(value: Buffer | string | null, rawHeaders: RawHeaders | undefined, record: RecordFacts = {}): DecodedEvent {
  return decodeEventFromStrings(value, headersToStrings(rawHeaders), record);
}

/**
 * `decodeEvent` for headers already read as strings (`headersToStrings`' result), which become
 * the event's `headers` as they are, not copied: a consumer reads them once per message for
 * its own use (spans, retry headers) and decodes from the same object.
 */
export function decodeEventFromStrings(value: Buffer | string | null, headers: Record<string, string>, record: RecordFacts = {}): DecodedEvent {
  const contentType = contentTypeOf(headers);
  const media = mediaType(contentType);
  if (media === STRUCTURED_CONTENT_TYPE) return { ...decodeStructured(value, record), headers };
  if (media?.startsWith('application/cloudevents')) {
    throw undecodable(
      `content-type ${contentType} is not supported: send one event per record, in binary mode or in structured mode as ${STRUCTURED_CONTENT_TYPE}`,
    );
  }
  const attribute = (name: string) => nonEmpty(headers[`ce_${name}`]);
  // The headers are added to the object fromAttributes built, not spread into a copy of it: a
  // consumer decodes every message.
  const event = fromAttributes(
    attribute,
    (name) => `header ce_${name}`,
    () => binaryPayload(value, contentType),
    record,
  ) as DecodedEvent;
  event.headers = headers;
  return event;
}

/** Reads an attribute in its string form; undefined when absent or empty. */
type AttributeReader = (name: string) => string | undefined;

const TENANT_HINT =
  ': every event needs the CloudEvents extension "tenantid" (the tenant id); the bus does not guess the tenant from the record key or the source. Set it on the producer';

function fromAttributes(attribute: AttributeReader, label: (name: string) => string, payload: () => unknown, record: RecordFacts): BusEvent {
  const required = (name: string, hint = '') => {
    const v = attribute(name);
    if (v === undefined) throw undecodable(`${label(name)} is missing${hint}`);
    return v;
  };
  const specVersion = attribute('specversion');
  if (specVersion !== undefined && specVersion !== '1.0') {
    throw undecodable(`${label('specversion')} is ${JSON.stringify(specVersion)}; only CloudEvents 1.0 is supported`);
  }
  const id = required('id');
  const eventType = required('type');
  const tenantId = required('tenantid', TENANT_HINT);
  const time = attribute('time');
  let createdAt: Date;
  if (time !== undefined) {
    const parsed = parseRfc3339(time);
    if (!parsed)
      throw undecodable(`${label('time')} is not an RFC 3339 date-time (like 2026-01-02T03:04:05.678Z or 2026-01-02T05:04:05+02:00): ${JSON.stringify(time)}`);
    createdAt = parsed;
  } else if (record.timestamp !== undefined && Number.isFinite(record.timestamp)) {
    createdAt = new Date(record.timestamp);
  } else {
    throw undecodable(`${label('time')} is missing and the record has no timestamp to use instead`);
  }
  const versionText = attribute('eventversion');
  const version = versionText === undefined ? 1 : Number(versionText);
  if (versionText !== undefined && (!/^\d+$/.test(versionText) || version < 1 || !Number.isSafeInteger(version))) {
    throw undecodable(`${label('eventversion')} is not an integer >= 1: ${JSON.stringify(versionText)}`);
  }
  return {
    id,
    tenantId,
    projectId: attribute('projectid') ?? null,
    eventKey: attribute('eventkey') ?? id,
    eventType,
    version,
    payload: payload(),
    correlationId: attribute('correlationid') ?? id,
    causationId: attribute('causationid') ?? null,
    createdAt,
  };
}

/** Binary mode: the value is the payload, JSON (no content-type means JSON). */
function binaryPayload(value: Buffer | string | null, contentType: string | undefined): unknown {
  if (contentType !== undefined && !isJsonMediaType(mediaType(contentType))) {
    throw undecodable(`content-type ${contentType} is not JSON: the bus carries JSON payloads (application/json or a +json type)`);
  }
  if (value === null) throw undecodable('the message has no value (a payload of none is the JSON null)');
  return parseJson(value, 'the value is not JSON');
}

/** Structured mode: the value is the whole event as a JSON object, the payload in `data` or `data_base64`. */
function decodeStructured(value: Buffer | string | null, record: RecordFacts): BusEvent {
  if (value === null) throw undecodable('the message has no value: structured mode carries the event in the value');
  const parsed = parseJson(value, 'the value is not JSON (structured mode carries the event as a JSON object)');
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw undecodable('the value is not a JSON object: structured mode carries one event per record as a JSON object');
  }
  const event = parsed as Record<string, unknown>;
  const attribute: AttributeReader = (name) => {
    const v = event[name];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'string') return v;
    // CloudEvents' canonical string form of Integer and Boolean attributes.
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw undecodable(`attribute ${name} is a JSON ${Array.isArray(v) ? 'array' : 'object'}; CloudEvents attributes are strings, integers or booleans`);
  };
  if (attribute('specversion') === undefined) throw undecodable('attribute specversion is missing: a structured-mode event needs "specversion": "1.0"');
  return fromAttributes(
    attribute,
    (name) => `attribute ${name}`,
    () => structuredPayload(event, attribute),
    record,
  );
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function structuredPayload(event: Record<string, unknown>, attribute: AttributeReader): unknown {
  const hasData = event.data !== undefined;
  const base64 = event.data_base64;
  if (hasData && base64 !== undefined && base64 !== null) throw undecodable('the event has both data and data_base64; the CloudEvents JSON format allows one');
  const contentType = attribute('datacontenttype');
  if (contentType !== undefined && !isJsonMediaType(mediaType(contentType))) {
    throw undecodable(`attribute datacontenttype ${contentType} is not JSON: the bus carries JSON payloads (application/json or a +json type)`);
  }
  if (base64 !== undefined && base64 !== null) {
    if (typeof base64 !== 'string' || !BASE64.test(base64)) throw undecodable('attribute data_base64 is not base64 (RFC 4648, with padding)');
    return parseJson(Buffer.from(base64, 'base64'), 'attribute data_base64 does not decode to JSON');
  }
  // No data at all: the event has no payload, which the bus represents as null.
  return hasData ? event.data : null;
}

function parseJson(value: Buffer | string, problem: string): unknown {
  try {
    return JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (cause) {
    throw undecodable(problem, cause);
  }
}

/** The `content-type` header, whatever case another client spelled its name in. */
function contentTypeOf(headers: Record<string, string>): string | undefined {
  const exact = headers[HEADER.contentType];
  if (exact !== undefined) return exact;
  for (const [name, value] of Object.entries(headers)) if (name.toLowerCase() === HEADER.contentType) return value;
  return undefined;
}

/** `type/subtype` in lower case, without parameters (`; charset=utf-8`). */
function mediaType(contentType: string | undefined): string | undefined {
  if (contentType === 'application/json') return contentType; // what the relay sends: no parsing
  const media = contentType?.split(';')[0]?.trim().toLowerCase();
  return media === '' ? undefined : media;
}

function isJsonMediaType(media: string | undefined): boolean {
  return media === undefined || media === 'application/json' || media === 'text/json' || media.endsWith('+json');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

function undecodable(message: string, cause?: unknown): EventBusError {
  return new EventBusError('UNDECODABLE_MESSAGE', `cannot decode message: ${message}`, { cause, retriable: false });
}
