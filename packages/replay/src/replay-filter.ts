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
}

/** A filter checked and turned into bound query parameters. */
export interface ResolvedReplayFilter {
  tenantId: string;
  /** Anchored regexes, or null for every type. */
  typeRegexes: string[] | null;
  fromDate: Date | null;
  toDate: Date | null;
  correlationId: string | null;
}

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
  };
}
