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
  return { info, original: withoutHeaders(headers, DLQ_HEADER_NAMES) };
}
