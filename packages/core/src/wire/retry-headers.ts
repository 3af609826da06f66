import type { MessageOrigin } from './message-origin.js';
import { integerHeader, offsetHeader, requiredHeader, withoutHeaders } from './message-origin.js';

/**
 * Headers a retry-topic message carries on top of the original key, value and headers.
 * Times are ms since the epoch, as decimal strings.
 */
export const RETRY_HEADER = {
  /** The attempt this delivery is (2 for the first retry; 1 for a re-driven dead letter). */
  attempt: 'eventbus-attempt',
  /** Not to be handled before this time. */
  dueAt: 'eventbus-due-at',
  originalTopic: 'eventbus-original-topic',
  originalPartition: 'eventbus-original-partition',
  originalOffset: 'eventbus-original-offset',
  originalTimestamp: 'eventbus-original-timestamp',
  firstFailureAt: 'eventbus-first-failure-at',
  /** The subscription whose handler failed: only that handler runs again. Absent: every matching one. */
  subscription: 'eventbus-subscription',
} as const;

/** The names of RETRY_HEADER, for dropping them from a copy's headers. */
const RETRY_HEADER_NAMES: ReadonlySet<string> = new Set(Object.values(RETRY_HEADER));

/** What a retry-topic message says about the retry. */
export interface RetryInfo {
  attempt: number;
  dueAt: number;
  origin: MessageOrigin;
  firstFailureAt: number;
  subscription?: string;
}

/**
 * The headers of a retry message: the original ones (older retry headers dropped) plus the
 * retry facts. Original values given as Buffers (the consumer's copies) are passed on as
 * they are, so the retry carries the producer's header bytes exactly.
 */
export function encodeRetryHeaders<V extends string | Buffer>(original: Readonly<Record<string, V>>, info: RetryInfo): Record<string, V | string> {
  const headers: Record<string, V | string> = withoutHeaders(original, RETRY_HEADER_NAMES);
  headers[RETRY_HEADER.attempt] = String(info.attempt);
  headers[RETRY_HEADER.dueAt] = String(info.dueAt);
  headers[RETRY_HEADER.originalTopic] = info.origin.topic;
  headers[RETRY_HEADER.originalPartition] = String(info.origin.partition);
  headers[RETRY_HEADER.originalOffset] = info.origin.offset;
  headers[RETRY_HEADER.originalTimestamp] = String(info.origin.timestamp);
  headers[RETRY_HEADER.firstFailureAt] = String(info.firstFailureAt);
  if (info.subscription !== undefined) headers[RETRY_HEADER.subscription] = info.subscription;
  return headers;
}

/** Splits a retry message's headers into the retry facts and the original headers; throws UNDECODABLE_MESSAGE. */
export function decodeRetryHeaders(headers: Record<string, string>): { info: RetryInfo; original: Record<string, string> } {
  const info: RetryInfo = {
    attempt: integerHeader(headers, RETRY_HEADER.attempt, 1),
    dueAt: integerHeader(headers, RETRY_HEADER.dueAt),
    origin: {
      topic: requiredHeader(headers, RETRY_HEADER.originalTopic),
      partition: integerHeader(headers, RETRY_HEADER.originalPartition),
      offset: offsetHeader(headers, RETRY_HEADER.originalOffset),
      timestamp: integerHeader(headers, RETRY_HEADER.originalTimestamp),
    },
    firstFailureAt: integerHeader(headers, RETRY_HEADER.firstFailureAt),
  };
  const subscription = headers[RETRY_HEADER.subscription];
  if (subscription !== undefined && subscription !== '') info.subscription = subscription;
  return { info, original: withoutHeaders(headers, RETRY_HEADER_NAMES) };
}
