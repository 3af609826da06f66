import { invalidConfig } from '@eventbus/core';
import type { DeadLetterFilter } from '@eventbus/dead-letters';
import { patternToRegex, type ReplayFilter } from '@eventbus/replay';
import type { ConsoleReplayTarget } from './replay-jobs.js';

/**
 * Request input, checked before it reaches a query: each bad value is an INVALID_CONFIG
 * error naming the field and what it expects (the API answers 400 with that message).
 */

const MAX_TEXT = 1000;
const STATUSES = ['pending', 'redriven', 'discarded', 'all'] as const;
export const MAX_IDS = 1000;

function text(name: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw invalidConfig(name, 'text', value);
  if (value.length > MAX_TEXT) throw invalidConfig(name, `at most ${MAX_TEXT} characters`, `${value.length} characters`);
  if (value.includes('\u0000')) throw invalidConfig(name, 'text without NUL bytes', 'a string containing \\u0000');
  return value.trim() === '' ? undefined : value.trim();
}

function date(name: string, value: unknown): Date | undefined {
  const t = text(name, value);
  if (t === undefined) return undefined;
  const d = new Date(t);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || Number.isNaN(d.getTime())) throw invalidConfig(name, 'an ISO 8601 date, like 2026-01-31T12:00:00Z', t);
  return d;
}

function patterns(name: string, value: unknown): string[] {
  const t = text(name, value);
  const list = (t ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of list) patternToRegex(p); // throws INVALID_EVENT_TYPE for a malformed pattern
  return list;
}

/** The dead-letter filter from the list's query string. */
export function deadLetterFilter(query: Record<string, string | undefined>): DeadLetterFilter {
  const status = text('status', query.status) ?? 'pending';
  if (!(STATUSES as readonly string[]).includes(status)) throw invalidConfig('status', STATUSES.join(', '), status);
  const stage = text('stage', query.stage);
  if (stage !== undefined && stage !== 'relay' && stage !== 'consumer') throw invalidConfig('stage', 'relay or consumer', stage);
  const limitText = text('limit', query.limit);
  const limit = limitText === undefined ? 100 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_IDS) throw invalidConfig('limit', `an integer from 1 to ${MAX_IDS}`, limitText);
  const tenantId = text('tenant', query.tenant);
  const groupId = text('group', query.group);
  const types = patterns('type', query.type);
  const since = date('since', query.since);
  const until = date('until', query.until);
  if (since && until && until <= since) throw invalidConfig('until', `a date after since (${since.toISOString()})`, until.toISOString());
  return {
    status: status === 'all' ? null : (status as DeadLetterFilter['status']),
    limit,
    ...(tenantId !== undefined ? { tenantId } : {}),
    ...(groupId !== undefined ? { groupId } : {}),
    ...(types.length > 0 ? { typeRegexes: types.map(patternToRegex) } : {}),
    ...(stage !== undefined ? { stage: stage as 'relay' | 'consumer' } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}

/** `{ ids: ["42", ...] }`: positive integers, at least one, at most MAX_IDS. */
export function deadLetterIds(body: unknown): string[] {
  const ids = (body as { ids?: unknown } | null)?.ids;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_IDS) throw invalidConfig('ids', `a list of 1 to ${MAX_IDS} dead letter ids`, ids);
  return ids.map((id) => {
    const t = String(id);
    if (!/^[1-9]\d{0,18}$/.test(t)) throw invalidConfig('ids', 'dead letter ids (positive integers)', t.slice(0, 80));
    return t;
  });
}

/** A replay request: tenant (required), types, from, to, target, rate. */
export function replayRequest(body: unknown): { filter: ReplayFilter; target: ConsoleReplayTarget; ratePerSecond: number | undefined } {
  const b = (body ?? {}) as Record<string, unknown>;
  const tenantId = text('tenant', b.tenant);
  if (tenantId === undefined) throw invalidConfig('tenant', 'the tenant whose events to replay', '');
  const fromDate = date('from', b.from);
  const toDate = date('to', b.to);
  const groupId = text('group', b.group);
  if (groupId !== undefined && groupId.length > 249) throw invalidConfig('group', 'a consumer group id of at most 249 characters', groupId.slice(0, 80));
  let ratePerSecond: number | undefined;
  if (b.rate !== undefined && b.rate !== '' && b.rate !== null) {
    ratePerSecond = Number(b.rate);
    if (!Number.isFinite(ratePerSecond) || ratePerSecond <= 0 || ratePerSecond > 100_000)
      throw invalidConfig('rate', 'events per second, more than 0 and at most 100000', b.rate);
  }
  return {
    filter: {
      tenantId,
      eventTypes: patterns('types', b.types),
      ...(fromDate ? { fromDate } : {}),
      ...(toDate ? { toDate } : {}),
    },
    target: groupId !== undefined ? { kind: 'group', groupId } : { kind: 'event-topics' },
    ratePerSecond,
  };
}
