import type { MessageOrigin } from './message-origin.js';
import { integerHeader, offsetHeader, requiredHeader, withoutHeaders } from './message-origin.js';

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
} as const;

/** The names of DLQ_HEADER, for dropping them from a copy's headers. */
const DLQ_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(DLQ_HEADER));

// Headers travel in every fetch of the DLQ; a runaway message or stack must not bloat them.
const MAX_ERROR_MESSAGE = 4000;
const MAX_ERROR_STACK = 8000;

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
  headers[DLQ_HEADER.errorMessage] = info.errorMessage.slice(0, MAX_ERROR_MESSAGE);
  if (info.errorStack) headers[DLQ_HEADER.errorStack] = info.errorStack.slice(0, MAX_ERROR_STACK);
  headers[DLQ_HEADER.attempts] = String(info.attempts);
  headers[DLQ_HEADER.firstFailureAt] = String(info.firstFailureAt);
  headers[DLQ_HEADER.lastFailureAt] = String(info.lastFailureAt);
  if (info.subscription !== undefined) headers[DLQ_HEADER.subscription] = info.subscription;
  headers[DLQ_HEADER.retryTopic] = info.retryTopic;
  return headers;
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
  return { info, original: withoutHeaders(headers, DLQ_HEADER_NAMES) };
}
