import { EventBusError, invalidConfig, type TopicRouter } from '@eventbus/core';
import { patternToRegex } from '@eventbus/replay';
import type { AuditProgress } from './audit.js';

export interface AuditOptions {
  /** Inclusive bounds on the events' created_at. */
  from: Date;
  to: Date;
  /** One tenant; absent = every tenant. */
  tenantId?: string;
  /** Event type patterns (`product.*`, `order.#`); absent or empty = every type. */
  eventTypes?: readonly string[];
  /** Consumer groups whose committed offsets to check against their inbox and dead letters. */
  groups?: readonly string[];
  /** The relay's topic routing: where each event type went. */
  router: TopicRouter;
  /**
   * How far before `from` and after `to` Kafka is read, by record timestamp: the relay
   * publishes an event after it is created, so a record of a window event can carry a later
   * timestamp; an event published more than the margin after `to` is not found. Default 15 min.
   */
  marginMs?: number;
  /** Rows kept per finding as samples (the counts are always complete). Default 20. */
  sampleLimit?: number;
  signal?: AbortSignal;
  onProgress?: (progress: AuditProgress) => void;
}

export interface ResolvedAuditOptions {
  from: Date;
  to: Date;
  tenantId: string | null;
  eventTypes: string[];
  typeRegexes: string[] | null;
  groups: string[];
  router: TopicRouter;
  marginMs: number;
  sampleLimit: number;
  signal: AbortSignal | undefined;
  onProgress: ((progress: AuditProgress) => void) | undefined;
}

export const DEFAULT_AUDIT_MARGIN_MS = 15 * 60_000;
export const DEFAULT_SAMPLE_LIMIT = 20;

/** Checks the options once (INVALID_CONFIG says what to fix) and fills the defaults. */
export function resolveAuditOptions(options: AuditOptions): ResolvedAuditOptions {
  const date = (name: string, value: Date) => {
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw invalidConfig(name, 'a valid date', String(value));
    return value;
  };
  const from = date('from', options.from);
  const to = date('to', options.to);
  if (from > to) throw new EventBusError('INVALID_CONFIG', `from (${from.toISOString()}) is after to (${to.toISOString()})`, { details: { setting: 'from' } });
  const tenantId = options.tenantId ?? null;
  if (tenantId !== null && (tenantId.trim() === '' || tenantId.includes('\u0000'))) throw invalidConfig('tenantId', 'a non-empty string without NUL', tenantId);
  const eventTypes = [...(options.eventTypes ?? [])];
  const marginMs = options.marginMs ?? DEFAULT_AUDIT_MARGIN_MS;
  if (!Number.isSafeInteger(marginMs) || marginMs < 0) throw invalidConfig('marginMs', 'an integer >= 0', String(marginMs));
  const sampleLimit = options.sampleLimit ?? DEFAULT_SAMPLE_LIMIT;
  if (!Number.isSafeInteger(sampleLimit) || sampleLimit < 0) throw invalidConfig('sampleLimit', 'an integer >= 0', String(sampleLimit));
  return {
    from,
    to,
    tenantId,
    eventTypes,
    typeRegexes: eventTypes.length === 0 ? null : eventTypes.map(patternToRegex),
    groups: [...new Set(options.groups ?? [])],
    router: options.router,
    marginMs,
    sampleLimit,
    signal: options.signal,
    onProgress: options.onProgress,
  };
}
