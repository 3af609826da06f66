import type pg from 'pg';
import { EventBusError } from '@eventbus/core';
import { findEventIds } from '@eventbus/outbox';
import type { ResolvedReplayFilter } from './replay-filter.js';
import { eventIdsUpperBound, replayUpperBound, type ReplayUpperBound } from './sql/replay-upper-bound.js';

/**
 * Refuses a replay by event id that names an id the tenant's EventLog does not have
 * (UNKNOWN_EVENT_ID, the missing ids in `details.eventIds`), before anything is read or sent:
 * a replay of "exactly these events" that quietly sent some of them would look done. Does
 * nothing for a filter without ids.
 */
export async function checkEventIds(db: pg.Pool | pg.ClientBase, filter: ResolvedReplayFilter): Promise<void> {
  if (!filter.eventIds) return;
  const found = new Set(await findEventIds(db, filter.tenantId, filter.eventIds));
  const missing = filter.eventIds.filter((id) => !found.has(id));
  if (missing.length === 0) return;
  const shown = missing.slice(0, 10).join(', ') + (missing.length > 10 ? ` and ${missing.length - 10} more` : '');
  throw new EventBusError(
    'UNKNOWN_EVENT_ID',
    `tenant ${JSON.stringify(filter.tenantId.slice(0, 80))} has no event ${shown} in this EventLog (another tenant's, pruned by retention, or written through another database); nothing was replayed`,
    { details: { tenantId: filter.tenantId, eventIds: missing } },
  );
}

/** Where a replay of `filter` stops reading: by event id, see eventIdsUpperBound; else replayUpperBound. */
export function upperBoundFor(db: pg.Pool | pg.ClientBase, filter: ResolvedReplayFilter): Promise<ReplayUpperBound> {
  return filter.eventIds ? eventIdsUpperBound(db, filter.toDate) : replayUpperBound(db, filter.toDate);
}
