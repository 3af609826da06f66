import { createHash } from 'node:crypto';
import { EventBusError, invalidConfig } from '@eventbus/core';
import type { ResolvedReplayFilter } from './replay-filter.js';

/**
 * A position in one tenant's EventLog: the last event read, in (created_at, id) order.
 * `createdAt` is Postgres' own text of the timestamp (microseconds, UTC): a JS Date has
 * only milliseconds, and a cursor rounded down to the millisecond would read the same
 * rows again forever.
 */
export interface ReplayCursor {
  createdAt: string;
  id: string;
}

/**
 * What a resume token carries: where to continue, the replay id to keep using, and what the
 * position is a position *in*: the tenant, a hash of the filters, and the window's exclusive
 * upper bound. A cursor is meaningless for another tenant or other filters (resuming tenant
 * B from tenant A's cursor would silently skip B's events before it), and a resumed replay
 * must stop where the original would have (see replayUpperBound).
 */
export interface ResumePoint {
  replayId: string;
  cursor: ReplayCursor;
  tenantId: string;
  /** `replayFilterHash` of the original replay's filter. */
  filterHash: string;
  /** Exclusive upper bound on created_at (Postgres' microsecond UTC text). */
  upperBound: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PG_UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const HASH = /^[0-9a-f]{16}$/;
const TOKEN_VERSION = 2;

/**
 * A short hash of what selects the events besides the tenant: types, window, correlation id,
 * event ids. Taken over the resolved filter, so `--types 'product.*, '` and `--types product.*`
 * agree. The event ids are appended only when given: a filter without them keeps its hash, so
 * the tokens interrupted replays already printed stay valid.
 */
export function replayFilterHash(filter: ResolvedReplayFilter): string {
  const canonical = JSON.stringify([
    filter.tenantId,
    filter.typeRegexes,
    filter.fromDate?.toISOString() ?? null,
    filter.toDate?.toISOString() ?? null,
    filter.correlationId,
    ...(filter.eventIds ? [filter.eventIds] : []),
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** An opaque, copy-pasteable token (base64url JSON) for `--resume`. */
export function encodeResumeToken(point: ResumePoint): string {
  return Buffer.from(
    JSON.stringify({
      v: TOKEN_VERSION,
      r: point.replayId,
      t: point.cursor.createdAt,
      i: point.cursor.id,
      n: point.tenantId,
      f: point.filterHash,
      u: point.upperBound,
    }),
  ).toString('base64url');
}

/** Reads a token from `encodeResumeToken`; INVALID_CONFIG when it is not one. */
export function decodeResumeToken(token: string): ResumePoint {
  const refuse = (why = 'a token printed by an interrupted replay') => invalidConfig('resume token', why, token.slice(0, 80));
  let parsed: Record<string, unknown>;
  try {
    // Tenant ids may be up to 1000 characters; base64 adds a third.
    if (!/^[A-Za-z0-9_-]{1,4000}$/.test(token)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  const { v, r, t, i, n, f, u } = parsed ?? {};
  if (v === 1) throw refuse('a token of this version (older tokens name no tenant or filters; resume with --after <last event id> instead)');
  if (
    v !== TOKEN_VERSION ||
    typeof r !== 'string' ||
    !UUID.test(r) ||
    typeof t !== 'string' ||
    !PG_UTC_TIMESTAMP.test(t) ||
    typeof i !== 'string' ||
    !UUID.test(i) ||
    typeof n !== 'string' ||
    n === '' ||
    typeof f !== 'string' ||
    !HASH.test(f) ||
    typeof u !== 'string' ||
    !PG_UTC_TIMESTAMP.test(u)
  ) {
    throw refuse();
  }
  return { replayId: r, cursor: { createdAt: t, id: i }, tenantId: n, filterHash: f, upperBound: u };
}

/**
 * Refuses a token taken from another replay: another tenant, or other filters. INVALID_CONFIG
 * (a usage error for the CLI), with what differs.
 */
export function checkResumePoint(point: ResumePoint, filter: ResolvedReplayFilter): void {
  if (point.tenantId !== filter.tenantId) {
    throw new EventBusError(
      'INVALID_CONFIG',
      `the resume token belongs to a replay of tenant ${JSON.stringify(point.tenantId.slice(0, 80))}, not ${JSON.stringify(filter.tenantId.slice(0, 80))}: resume with the same --tenant, or start a new replay without --resume`,
      { details: { setting: 'resume' } },
    );
  }
  if (point.filterHash !== replayFilterHash(filter)) {
    throw new EventBusError(
      'INVALID_CONFIG',
      'the resume token belongs to a replay with other filters (--types, --from, --to, --correlation-id or --event-id differ): resume with the command line the interrupted replay printed',
      { details: { setting: 'resume' } },
    );
  }
}
