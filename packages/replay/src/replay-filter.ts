import { EventBusError, invalidConfig } from '@eventbus/core';
import { patternToRegex } from './type-pattern-regex.js';

/** Which EventLog events a replay reads: always one tenant. */
export interface ReplayFilter {
  tenantId: string;
  /** Patterns (`product.*`, `pricechange.applied`, `#`); empty or absent = every type. */
  eventTypes?: readonly string[];
  /** Inclusive lower bound on created_at; absent = the beginning. */
  fromDate?: Date;
  /** Inclusive upper bound on created_at; absent = no bound. */
  toDate?: Date;
  correlationId?: string;
  /**
   * Only these events (uuids, at most MAX_EVENT_IDS); absent = any. The other filters narrow
   * them further. An id the tenant's EventLog does not have fails the replay with
   * UNKNOWN_EVENT_ID before anything is read or sent; an empty list is refused (INVALID_CONFIG),
   * as it would otherwise mean "every event".
   */
  eventIds?: readonly string[];
}

/** A filter checked and turned into bound query parameters. */
export interface ResolvedReplayFilter {
  tenantId: string;
  /** Anchored regexes, or null for every type. */
  typeRegexes: string[] | null;
  fromDate: Date | null;
  toDate: Date | null;
  correlationId: string | null;
  /** Lowercase, without duplicates, sorted; null for any event. */
  eventIds: string[] | null;
}

/**
 * Why a cap: a replay by id is for the handful of events an operator names (a dead letter's,
 * an incident's); each page reads every remaining id through the primary key and sorts them, so
 * the cost grows with the list. Larger selections are what --types, --from/--to and
 * --correlation-id are for.
 */
export const MAX_EVENT_IDS = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Tenant and correlation ids are free text in the EventLog, so any length the producer
// accepted is legal; the cap only stops absurd input from becoming an absurd query.
const MAX_ID_LENGTH = 1000;

/**
 * Validates a filter. Every value ends up as a bound parameter whatever it holds; this
 * step exists to turn nonsense (NUL bytes, which Postgres text cannot hold, invalid dates,
 * a window that ends before it starts, malformed patterns) into an INVALID_CONFIG error
 * that says what to fix, instead of a driver error or a silent empty result.
 */
export function resolveReplayFilter(filter: ReplayFilter): ResolvedReplayFilter {
  const id = (name: string, value: unknown): string => {
    if (typeof value !== 'string' || value.trim() === '') throw invalidConfig(name, 'a non-empty string', value);
    if (value.length > MAX_ID_LENGTH) throw invalidConfig(name, `at most ${MAX_ID_LENGTH} characters`, `${value.length} characters`);
    if (value.includes('\u0000')) throw invalidConfig(name, 'text without NUL bytes', 'a string containing \\u0000');
    return value;
  };
  const date = (name: string, value: Date | undefined): Date | null => {
    if (value === undefined) return null;
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalidConfig(name, 'a valid date', String(value));
    return value;
  };
  const fromDate = date('fromDate', filter.fromDate);
  const toDate = date('toDate', filter.toDate);
  if (fromDate && toDate && fromDate > toDate) {
    throw new EventBusError('INVALID_CONFIG', `fromDate (${fromDate.toISOString()}) is after toDate (${toDate.toISOString()})`, {
      details: { setting: 'fromDate' },
    });
  }
  const patterns = filter.eventTypes ?? [];
  return {
    tenantId: id('tenantId', filter.tenantId),
    typeRegexes: patterns.length === 0 ? null : patterns.map(patternToRegex),
    fromDate,
    toDate,
    correlationId: filter.correlationId === undefined ? null : id('correlationId', filter.correlationId),
    eventIds: filter.eventIds === undefined ? null : eventIdList(filter.eventIds),
  };
}

function eventIdList(ids: readonly string[]): string[] {
  if (!Array.isArray(ids) || ids.length === 0)
    throw invalidConfig('eventIds', 'at least one event id (leave eventIds out to select by the other filters)', '[]');
  for (const value of ids) {
    if (typeof value !== 'string' || !UUID.test(value))
      throw invalidConfig('eventIds', 'event ids (uuids)', typeof value === 'string' ? value.slice(0, 80) : value);
  }
  const unique = [...new Set(ids.map((value) => value.toLowerCase()))].sort();
  if (unique.length > MAX_EVENT_IDS) throw invalidConfig('eventIds', `at most ${MAX_EVENT_IDS} event ids`, `${unique.length} ids`);
  return unique;
}
