import type pg from 'pg';
import type { ReplayCursor } from './replay-cursor.js';
import type { ResolvedReplayFilter } from './replay-filter.js';
import { readEventPage, startCursor, type ReplayedRow } from '@eventbus/outbox';
import { upperBoundFor } from './event-ids.js';

/** Rows per keyset page: big enough to amortise the round trip, small enough to keep memory flat. */
export const DEFAULT_PAGE_SIZE = 500;

/**
 * Why the page reads run with sorts and bitmap scans disabled: the only good plan for a
 * keyset page is an ordered index scan that stops after LIMIT rows. Right after a bulk
 * load, before autovacuum has analyzed event_log, the planner estimates a handful of rows
 * and picks a bitmap scan plus a sort of *every* remaining row of the tenant, for every
 * page: a 200k-event replay then took 40 s instead of 4 s here (measured). Disabling the
 * alternatives leaves the index scan, whatever the statistics say. Set on a connection
 * this function checks out of a Pool, and reset before it goes back.
 *
 * Not for a filter with event ids: that read goes through the primary key and sorts the few
 * rows it finds (READ_EVENT_PAGE_BY_IDS_SQL), a sort that enable_sort = off prices at 10^10;
 * that cost alone pushes the statement over jit_above_cost, and compiling it took 48 and 129 ms
 * in two runs here (EXPLAIN ANALYZE, 3 ids among 20,000 events), for a read of under 1 ms.
 */
const PAGE_PLAN_SETTINGS = 'SET enable_sort = off; SET enable_bitmapscan = off';
const RESET_PAGE_PLAN_SETTINGS = 'RESET enable_sort; RESET enable_bitmapscan';

/**
 * Reads the filter's events page by page. Only one page is held at a time; the caller
 * finishes a page before the next is read. Checks `signal` before each read, so an abort
 * ends the loop at a page boundary and the caller's last cursor is exact.
 *
 * Given a Pool, it holds one connection for the whole iteration (see PAGE_PLAN_SETTINGS);
 * given a client, it uses it as is and leaves its settings alone.
 *
 * `before` is the exclusive upper bound on created_at; absent, it is computed once before the
 * first read (min(--to, the visibility horizon), see replayUpperBound), so a transaction that
 * started before the cursor and commits during the iteration is not skipped. A filter with
 * event ids gets eventIdsUpperBound instead: the caller checks the ids first (checkEventIds).
 */
export async function* eventPages(
  db: pg.Pool | pg.ClientBase,
  filter: ResolvedReplayFilter,
  options: { after?: ReplayCursor; pageSize?: number; signal?: AbortSignal; before?: string } = {},
): AsyncGenerator<ReplayedRow[]> {
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  let cursor = options.after ?? startCursor(filter);
  const owned = isPool(db) ? await db.connect() : undefined;
  let broken: Error | undefined;
  try {
    if (owned && !filter.eventIds) await owned.query(PAGE_PLAN_SETTINGS);
    const client = owned ?? (db as pg.ClientBase);
    const before = options.before ?? (await upperBoundFor(client, filter)).bound;
    while (!options.signal?.aborted) {
      const page = await readEventPage(client, filter, cursor, pageSize, before);
      if (page.length === 0) return;
      yield page;
      cursor = page[page.length - 1]!.cursor;
      if (page.length < pageSize) return;
    }
  } finally {
    if (owned) {
      // A connection whose settings cannot be reset must not go back to the pool.
      if (!filter.eventIds) await owned.query(RESET_PAGE_PLAN_SETTINGS).catch((error: Error) => (broken = error));
      owned.release(broken);
    }
  }
}

function isPool(db: pg.Pool | pg.ClientBase): db is pg.Pool {
  return 'idleCount' in db && typeof (db as pg.Pool).connect === 'function';
}
