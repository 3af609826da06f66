import type { MessageOrigin } from './message-origin.js';
import { integerHeader, offsetHeader, requiredHeader, withoutHeaders } from './message-origin.js';
import { HEADER } from './message-format.js';

/**
 * Headers a DLQ message carries on top of the original key, value and headers.
 * Times are ms since the epoch, as decimal strings.
 */
export const DLQ_HEADER = {
  originalTopic: 'eventbus-dlq-original-topic',
  originalPartition: 'eventbus-dlq-original-partition',
  originalOffset: 'eventbus-dlq-original-offset',
  originalTimestamp: 'eventbus-dlq-original-timestamp',
  group: 'eventbus-dlq-group',
  errorClass: 'eventbus-dlq-error-class',
  errorMessage: 'eventbus-dlq-error-message',
  errorStack: 'eventbus-dlq-error-stack',
  attempts: 'eventbus-dlq-attempts',
  firstFailureAt: 'eventbus-dlq-first-failure-at',
  lastFailureAt: 'eventbus-dlq-last-failure-at',
  /** The subscription whose handler gave up (absent for undecodable messages). */
  subscription: 'eventbus-dlq-subscription',
  /** The group's retry topic, so a re-drive needs no routing config. */
  retryTopic: 'eventbus-dlq-retry-topic',
  /**
   * Present on a record that stands for a DLQ copy Kafka refused as too large: the size in
   * bytes of the refused copy. The record has an empty value and, of the original headers, only
   * the event's identity (DEAD_LETTER_IDENTITY_HEADERS); the original stays on its topic at the
   * coordinates the other headers give.
   */
  truncated: 'eventbus-dlq-truncated',
  /**
   * Present on a truncated record that Kafka refused too, sent again without what made it too
   * large (coordinatesOnlyDlqRecord): what was left out, as `name=bytes` pairs joined by commas,
   * `key` for the record key (sent empty), a header name for a header left out.
   */
  dropped: 'eventbus-dlq-dropped',
} as const;

/** The names of DLQ_HEADER, for dropping them from a copy's headers. */
const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DLQ_HEADER));

/**
 * At most this many UTF-8 bytes of the error message and stack go in the headers. Headers travel
 * in every fetch of the DLQ, and what a DLQ copy adds to the original must stay well within the
 * headroom its topic has over the event topics (see copy topic sizing in @eventbus/kafka's
 * ensureTopics): with these, everything the DLQ headers add is under 8 KiB for topic, group and
 * subscription names of ordinary length. Bytes, not characters: 4000 characters of CJK text
 * are 12,000 bytes.
 */
export const MAX_DLQ_ERROR_MESSAGE_BYTES = 2048;
export const MAX_DLQ_ERROR_STACK_BYTES = 4096;

/** The original headers a truncated DLQ record keeps: what names the event in the dead_letters row. */
const DEAD_LETTER_IDENTITY_HEADERS: readonly string[] = [HEADER.id, HEADER.type, HEADER.tenantId, HEADER.eventKey];

/** What a DLQ message says about the failure. */
export interface DeadLetterInfo {
  origin: MessageOrigin;
  groupId: string;
  errorClass: string;
  errorMessage: string;
  errorStack?: string;
  attempts: number;
  firstFailureAt: number;
  lastFailureAt: number;
  subscription?: string;
  retryTopic: string;
  /** Set on a truncated record (DLQ_HEADER.truncated): the size in bytes of the copy Kafka refused. */
  refusedCopyBytes?: number;
  /** Set on a coordinates-only record (DLQ_HEADER.dropped): what was left out of it, with its size in bytes; `key` for the record key. */
  dropped?: DroppedPart[];
}

/** One part of a DLQ record left out of a coordinates-only record: `key` (the record key) or a header name, and its size in bytes. */
export interface DroppedPart {
  name: string;
  bytes: number;
}

/**
 * The headers of a DLQ message: the original ones (older DLQ headers dropped; the caller drops
 * retry headers) plus the failure facts. Original values given as Buffers (the consumer's
 * copies) are passed on as they are, so the DLQ record carries the producer's header bytes exactly.
 */
export function encodeDlqHeaders<V extends string | Buffer>(original: Readonly<Record<string, V>>, info: DeadLetterInfo): Record<string, V | string> {
  const headers: Record<string, V | string> = withoutHeaders(original, DLQ_HEADER_NAMES);
  headers[DLQ_HEADER.originalTopic] = info.origin.topic;
  headers[DLQ_HEADER.originalPartition] = String(info.origin.partition);
  headers[DLQ_HEADER.originalOffset] = info.origin.offset;
  headers[DLQ_HEADER.originalTimestamp] = String(info.origin.timestamp);
  headers[DLQ_HEADER.group] = info.groupId;
  headers[DLQ_HEADER.errorClass] = info.errorClass;
  headers[DLQ_HEADER.errorMessage] = truncateUtf8(info.errorMessage, MAX_DLQ_ERROR_MESSAGE_BYTES);
  if (info.errorStack) headers[DLQ_HEADER.errorStack] = truncateUtf8(info.errorStack, MAX_DLQ_ERROR_STACK_BYTES);
  headers[DLQ_HEADER.attempts] = String(info.attempts);
  headers[DLQ_HEADER.firstFailureAt] = String(info.firstFailureAt);
  headers[DLQ_HEADER.lastFailureAt] = String(info.lastFailureAt);
  if (info.subscription !== undefined) headers[DLQ_HEADER.subscription] = info.subscription;
  headers[DLQ_HEADER.retryTopic] = info.retryTopic;
  if (info.refusedCopyBytes !== undefined) headers[DLQ_HEADER.truncated] = String(info.refusedCopyBytes);
  if (info.dropped !== undefined) headers[DLQ_HEADER.dropped] = encodeDropped(info.dropped);
  return headers;
}

/**
 * The headers of a truncated DLQ record, from those of the copy Kafka refused (`copyHeaders`,
 * as encodeDlqHeaders made them): the DLQ headers and the event's identity headers, plus
 * DLQ_HEADER.truncated with the refused copy's size. Sent with an empty value, it is small
 * whatever the event's size, so the DLQ mirror records the failure and the original's
 * coordinates (an operator finds the event on its topic) instead of the copy being sent again
 * forever.
 */
export function truncatedDlqHeaders<V extends string | Buffer>(copyHeaders: Readonly<Record<string, V>>, refusedCopyBytes: number): Record<string, V | string> {
  const headers: Record<string, V | string> = {};
  for (const name of DEAD_LETTER_IDENTITY_HEADERS) if (copyHeaders[name] !== undefined) headers[name] = copyHeaders[name]!;
  for (const name of DLQ_HEADER_NAMES) if (copyHeaders[name] !== undefined) headers[name] = copyHeaders[name]!;
  headers[DLQ_HEADER.truncated] = String(refusedCopyBytes);
  return headers;
}

/**
 * At most this many bytes of the key and of each identity header stay in a coordinates-only
 * record. An event id, a type, an event key or a tenant id of ordinary length is far below it;
 * one above it is what made the truncated record too large, and the original on its topic
 * still holds it.
 */
export const MAX_COORDINATES_ONLY_PART_BYTES = 256;

/**
 * The last resort for a truncated DLQ record (truncatedDlqHeaders) that Kafka refused too: a
 * key or identity header of the event alone is larger than the DLQ topic accepts. The record
 * becomes the DLQ headers that say where the original is and why it failed (original topic,
 * partition, offset, group, error class and message, attempts), plus the key and each identity
 * header no larger than MAX_COORDINATES_ONLY_PART_BYTES; the key and headers above it, and the
 * error stack, are left out and named in DLQ_HEADER.dropped with their sizes. What is left is
 * a few KiB at most whatever the event (the DLQ headers are capped), so the consumer's partition
 * goes on and the DLQ mirror still records the failure and the original's coordinates.
 */
export function coordinatesOnlyDlqRecord<V extends string | Buffer>(truncated: {
  key: string | Buffer;
  headers: Readonly<Record<string, V | string>>;
}): { key: string | Buffer; value: Buffer; headers: Record<string, V | string> } {
  const dropped: DroppedPart[] = [];
  const keyBytes = byteLength(truncated.key);
  const key = keyBytes > MAX_COORDINATES_ONLY_PART_BYTES ? Buffer.alloc(0) : truncated.key;
  if (keyBytes > MAX_COORDINATES_ONLY_PART_BYTES) dropped.push({ name: 'key', bytes: keyBytes });
  const headers: Record<string, V | string> = {};
  for (const name of DEAD_LETTER_IDENTITY_HEADERS) {
    const value = truncated.headers[name];
    if (value === undefined) continue;
    const bytes = byteLength(value);
    if (bytes > MAX_COORDINATES_ONLY_PART_BYTES) dropped.push({ name, bytes });
    else headers[name] = value;
  }
  for (const name of DLQ_HEADER_NAMES) {
    const value = truncated.headers[name];
    if (value === undefined) continue;
    // The stack (up to 4 KiB) is the one DLQ header an operator can do without: the class and message say what failed.
    if (name === DLQ_HEADER.errorStack) dropped.push({ name, bytes: byteLength(value) });
    else headers[name] = value;
  }
  headers[DLQ_HEADER.dropped] = encodeDropped(dropped);
  return { key, value: Buffer.alloc(0), headers };
}

function encodeDropped(parts: readonly DroppedPart[]): string {
  return parts.map((p) => `${p.name}=${p.bytes}`).join(',');
}

/** DLQ_HEADER.dropped read back; a part that does not parse is left out (the header is informative only). */
export function decodeDropped(value: string): DroppedPart[] {
  const parts: DroppedPart[] = [];
  for (const pair of value.split(',')) {
    const at = pair.lastIndexOf('=');
    const bytes = Number(pair.slice(at + 1));
    if (at > 0 && Number.isInteger(bytes) && bytes >= 0) parts.push({ name: pair.slice(0, at), bytes });
  }
  return parts;
}

function byteLength(value: string | Buffer): number {
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/** `text` cut to at most `maxBytes` UTF-8 bytes at a character boundary, marked with `…` when cut. */
function truncateUtf8(text: string, maxBytes: number): string {
  // Most messages are short: no encoding for those (a UTF-16 unit is at most 3 UTF-8 bytes).
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text) <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  let end = maxBytes - 3; // room for the ellipsis, 3 bytes
  // Back to a character boundary: a UTF-8 continuation byte is 10xxxxxx.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}…`;
}

/** Splits a DLQ message's headers into the failure facts and the original headers; throws UNDECODABLE_MESSAGE. */
export function decodeDlqHeaders(headers: Record<string, string>): { info: DeadLetterInfo; original: Record<string, string> } {
  const info: DeadLetterInfo = {
    origin: {
      topic: requiredHeader(headers, DLQ_HEADER.originalTopic),
      partition: integerHeader(headers, DLQ_HEADER.originalPartition),
      offset: offsetHeader(headers, DLQ_HEADER.originalOffset),
      timestamp: integerHeader(headers, DLQ_HEADER.originalTimestamp),
    },
    groupId: requiredHeader(headers, DLQ_HEADER.group),
    errorClass: requiredHeader(headers, DLQ_HEADER.errorClass),
    errorMessage: headers[DLQ_HEADER.errorMessage] ?? '',
    attempts: integerHeader(headers, DLQ_HEADER.attempts, 1),
    firstFailureAt: integerHeader(headers, DLQ_HEADER.firstFailureAt),
    lastFailureAt: integerHeader(headers, DLQ_HEADER.lastFailureAt),
    retryTopic: requiredHeader(headers, DLQ_HEADER.retryTopic),
  };
  if (headers[DLQ_HEADER.errorStack]) info.errorStack = headers[DLQ_HEADER.errorStack];
  if (headers[DLQ_HEADER.subscription]) info.subscription = headers[DLQ_HEADER.subscription];
  if (headers[DLQ_HEADER.truncated] !== undefined) info.refusedCopyBytes = integerHeader(headers, DLQ_HEADER.truncated);
  const dropped = headers[DLQ_HEADER.dropped];
  if (dropped !== undefined) info.dropped = decodeDropped(dropped);
  return { info, original: withoutHeaders(headers, DLQ_HEADER_NAMES) };
}
