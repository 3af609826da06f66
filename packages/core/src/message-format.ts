import { EventBusError } from './errors.js';

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
 * | ce_source         | `/tenants/{tenantId}`                  |
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

/** An event as stored in the EventLog and as a consumer receives it. */
export interface BusEvent<Payload = unknown> {
  id: string;
  tenantId: string;
  projectId: string | null;
  eventKey: string;
  eventType: string;
  version: number;
  payload: Payload;
  correlationId: string;
  causationId: string | null;
  createdAt: Date;
}

/** The stored facts the relay reads to build a message; the payload stays serialized. */
export interface StoredEvent {
  id: string;
  tenantId: string;
  projectId: string | null;
  eventKey: string;
  eventType: string;
  version: number;
  /** The JSON payload as text, exactly as it goes on the wire. */
  payloadJson: string;
  correlationId: string;
  causationId: string | null;
  createdAt: Date;
  traceparent: string | null;
  tracestate: string | null;
}

/**
 * A StoredEvent from a row that selects eventbus.event_log's columns under their own names,
 * with `id::text AS id` and `payload::text AS payload_json` (the relay's claim and the
 * replay's page read both do).
 */
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

export function encodeEvent(event: StoredEvent, extraHeaders?: Record<string, string>): WireMessage {
  const headers: Record<string, string> = {
    [HEADER.specVersion]: '1.0',
    [HEADER.id]: event.id,
    [HEADER.type]: event.eventType,
    [HEADER.source]: `/tenants/${event.tenantId}`,
    [HEADER.time]: event.createdAt.toISOString(),
    [HEADER.tenantId]: event.tenantId,
    [HEADER.eventKey]: event.eventKey,
    [HEADER.version]: String(event.version),
    [HEADER.correlationId]: event.correlationId,
    [HEADER.contentType]: 'application/json',
  };
  if (event.projectId !== null) headers[HEADER.projectId] = event.projectId;
  if (event.causationId !== null) headers[HEADER.causationId] = event.causationId;
  if (event.traceparent) headers[HEADER.traceparent] = event.traceparent;
  if (event.tracestate) headers[HEADER.tracestate] = event.tracestate;
  return { key: event.tenantId, value: event.payloadJson, headers: extraHeaders ? { ...headers, ...extraHeaders } : headers };
}

export type RawHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** Header values as strings (the last one when a header repeats). */
export function headersToStrings(raw: RawHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw ?? {})) {
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) out[name] = typeof last === 'string' ? last : last.toString('utf8');
  }
  return out;
}

/**
 * Decodes a message into an event; throws UNDECODABLE_MESSAGE (never retried: the bytes
 * will not change) when a required header is missing or the value is not JSON.
 */
export function decodeEvent(value: Buffer | string | null, rawHeaders: RawHeaders | undefined): BusEvent & { headers: Record<string, string> } {
  const headers = headersToStrings(rawHeaders);
  const required = (name: string) => {
    const v = headers[name];
    if (v === undefined || v === '') throw undecodable(`header ${name} is missing`);
    return v;
  };
  const id = required(HEADER.id);
  const createdAt = new Date(required(HEADER.time));
  if (Number.isNaN(createdAt.getTime())) throw undecodable(`header ${HEADER.time} is not a date`);
  const version = Number(headers[HEADER.version] ?? '1');
  if (!Number.isInteger(version)) throw undecodable(`header ${HEADER.version} is not an integer`);
  if (value === null) throw undecodable('the message has no value');
  let payload: unknown;
  try {
    payload = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (cause) {
    throw undecodable('the value is not JSON', cause);
  }
  return {
    id,
    tenantId: required(HEADER.tenantId),
    projectId: headers[HEADER.projectId] ?? null,
    eventKey: headers[HEADER.eventKey] ?? id,
    eventType: required(HEADER.type),
    version,
    payload,
    correlationId: headers[HEADER.correlationId] ?? id,
    causationId: headers[HEADER.causationId] ?? null,
    createdAt,
    headers,
  };
}

function undecodable(message: string, cause?: unknown): EventBusError {
  return new EventBusError('UNDECODABLE_MESSAGE', `cannot decode message: ${message}`, { cause, retriable: false });
}
