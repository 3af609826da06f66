import { invalidConfig } from '@eventbus/core';

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

/** What a resume token carries: where to continue, and the replay id to keep using. */
export interface ResumePoint {
  replayId: string;
  cursor: ReplayCursor;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PG_UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** An opaque, copy-pasteable token (base64url JSON) for `--resume`. */
export function encodeResumeToken(point: ResumePoint): string {
  return Buffer.from(JSON.stringify({ v: 1, r: point.replayId, t: point.cursor.createdAt, i: point.cursor.id })).toString('base64url');
}

/** Reads a token from `encodeResumeToken`; INVALID_CONFIG when it is not one. */
export function decodeResumeToken(token: string): ResumePoint {
  let parsed: { v?: unknown; r?: unknown; t?: unknown; i?: unknown };
  try {
    if (!/^[A-Za-z0-9_-]{1,1000}$/.test(token)) throw new Error('not base64url');
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalidConfig('resume token', 'a token printed by an interrupted replay', token.slice(0, 80));
  }
  const { v, r, t, i } = parsed ?? {};
  if (v !== 1 || typeof r !== 'string' || !UUID.test(r) || typeof t !== 'string' || !PG_UTC_TIMESTAMP.test(t) || typeof i !== 'string' || !UUID.test(i)) {
    throw invalidConfig('resume token', 'a token printed by an interrupted replay', token.slice(0, 80));
  }
  return { replayId: r, cursor: { createdAt: t, id: i } };
}
