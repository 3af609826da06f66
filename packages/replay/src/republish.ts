import type pg from 'pg';
import { errorMessage, EventBusError, reconnectDelayMs, sleep, uuidv7 } from '@eventbus/core';
import { PublishError, type MessagePublisher, type OutboundMessage } from '@eventbus/kafka';
import { DEFAULT_PAGE_SIZE, eventPages } from './event-pages.js';
import { RatePacer } from './rate-pacer.js';
import { encodeResumeToken, replayFilterHash, type ReplayCursor } from './replay-cursor.js';
import { resolveReplayFilter, type ReplayFilter } from './replay-filter.js';
import { replayMessage, targetTopic, type ReplayTarget } from './replay-message.js';
import { countMatchingEvents, startCursor, type ReplayedRow } from '@eventbus/outbox';
import type { ReplayUpperBound } from './sql/replay-upper-bound.js';
import { checkEventIds, upperBoundFor } from './event-ids.js';

export interface RepublishOptions {
  filter: ReplayFilter;
  target: ReplayTarget;
  /** Required unless `dryRun`. */
  publisher?: MessagePublisher;
  /** Marks every message (`ce_replayid`); a resumed replay passes the original one. Default: a new uuid v7. */
  replayId?: string;
  /** Continue after this position (from a resume token or `--after <event id>`). */
  after?: ReplayCursor;
  /**
   * The exclusive upper bound on created_at of a resumed replay (its token's). Absent: computed
   * when the replay starts, min(toDate, the visibility horizon); see replayUpperBound (with
   * `filter.eventIds`: eventIdsUpperBound).
   */
  upperBound?: string;
  pageSize?: number;
  /** Average events per second; default unlimited. */
  ratePerSecond?: number;
  /** Read and count, send nothing. */
  dryRun?: boolean;
  /** Stops after the chunk in flight; the result then carries a resume token. */
  signal?: AbortSignal;
  /** Called after every sent chunk (and once at the start with sent = 0). */
  onProgress?: (progress: RepublishProgress) => void;
}

export interface RepublishProgress {
  /** Events sent so far (counted, in a dry run). */
  sent: number;
  /** Events the filter matches after the starting point, counted when the replay began. */
  total: number;
  elapsedMs: number;
}

/** One event as a summary line shows it. */
export interface EventSummary {
  id: string;
  eventType: string;
  createdAt: string;
  topic: string;
}

export interface RepublishResult {
  replayId: string;
  dryRun: boolean;
  /** Events sent (in a dry run: events that would be sent). */
  sent: number;
  total: number;
  first: EventSummary | null;
  last: EventSummary | null;
  /** True when the signal stopped the replay before the end of the window. */
  interrupted: boolean;
  /** Where the replay stopped; pass it to `--resume` to continue. Null when nothing was sent. */
  resumeToken: string | null;
  /** The last event sent, for `--after`. */
  lastEventId: string | null;
  /**
   * The window's exclusive upper bound: events created before `bound` were read. `limitedBy`
   * says whether --to, a transaction still open when the replay started, or the start itself
   * set it ('resumed': taken from the token). Events from `bound` on (`--from <bound>`) are
   * for a later replay.
   */
  upperBound: { bound: string; limitedBy: ReplayUpperBound['limitedBy'] | 'resumed'; hiddenSessions: number };
  elapsedMs: number;
}

/**
 * Republishes a tenant's EventLog events to Kafka in (created_at, id) order, in the
 * relay's message format plus `ce_replayid`. Reads keyset pages (memory stays one page),
 * publishes each page in chunks through the MessagePublisher (acks = -1, so a chunk counts
 * as sent only once Kafka has it) and advances the cursor only past acknowledged events:
 * an interrupted replay resumed from its token re-sends nothing and skips nothing.
 *
 * The same call with `dryRun` reads the same rows and publishes none. A filter with event ids
 * that names an id the tenant's EventLog does not have fails with UNKNOWN_EVENT_ID, dry run or
 * not, before anything is sent (checkEventIds).
 */
export async function republishEvents(db: pg.Pool | pg.ClientBase, options: RepublishOptions): Promise<RepublishResult> {
  const filter = resolveReplayFilter(options.filter);
  const startedAt = Date.now();
  const replayId = options.replayId ?? uuidv7();
  const dryRun = options.dryRun ?? false;
  const publisher = options.publisher;
  if (!dryRun && !publisher) throw new TypeError('republishEvents: a publisher is required unless dryRun');
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  const pacer = new RatePacer(dryRun ? undefined : options.ratePerSecond, pageSize);
  const after = options.after ?? startCursor(filter);
  // Before the bound: every id found is then created before it (see eventIdsUpperBound).
  await checkEventIds(db, filter);
  // Fixed before the first read: a transaction that started before the cursor and commits
  // during the replay is then either read (it started before the bound, so the bound waited
  // for it) or left for the next replay; never skipped.
  const upperBound: RepublishResult['upperBound'] = options.upperBound
    ? { bound: options.upperBound, limitedBy: 'resumed', hiddenSessions: 0 }
    : await upperBoundFor(db, filter);
  const before = upperBound.bound;
  const token = (cursor: ReplayCursor) =>
    encodeResumeToken({ replayId, cursor, tenantId: filter.tenantId, filterHash: replayFilterHash(filter), upperBound: before });
  const total = await countMatchingEvents(db, filter, after, before);

  let sent = 0;
  let first: EventSummary | null = null;
  let lastRow: ReplayedRow | null = null;
  const progress = () => options.onProgress?.({ sent, total, elapsedMs: Date.now() - startedAt });
  progress();

  const signal = options.signal;
  // Whether events may remain: a chunk skipped by an abort, or a full last page (the reader
  // stops at a full page when the signal aborted; a short page is the window's end).
  let stoppedEarly = false;
  let lastPageFull = false;
  let pagesRead = 0;
  pages: for await (const page of eventPages(db, filter, { after, pageSize, before, ...(signal ? { signal } : {}) })) {
    lastPageFull = page.length === pageSize;
    pagesRead++;
    for (let i = 0; i < page.length; i += pacer.chunkSize) {
      const chunk = page.slice(i, i + pacer.chunkSize);
      await pacer.take(chunk.length, signal);
      // Abort between chunks: what was acknowledged stays the resume point.
      if (signal?.aborted) {
        stoppedEarly = true;
        break pages;
      }
      if (!dryRun) {
        try {
          await publishWithRetries(
            publisher!,
            chunk.map((row) => replayMessage(row, options.target, replayId)),
            signal,
          );
        } catch (error) {
          // Everything before this chunk was acknowledged: hand the caller the point to resume from.
          const cursor = lastRow?.cursor ?? options.after;
          throw replayStopped(error, {
            replayId,
            sent,
            total,
            lastEventId: lastRow?.id ?? options.after?.id ?? null,
            resumeToken: cursor ? token(cursor) : null,
            upperBound: before,
          });
        }
      }
      first ??= summary(chunk[0]!, options.target);
      lastRow = chunk[chunk.length - 1]!;
      sent += chunk.length;
      progress();
    }
  }

  // (No page at all: the abort came before the first read, e.g. during the count.)
  const interrupted = (signal?.aborted ?? false) && (stoppedEarly || lastPageFull || (pagesRead === 0 && total > 0));
  const cursor = lastRow?.cursor ?? options.after ?? null;
  return {
    replayId,
    dryRun,
    sent,
    total,
    first,
    last: lastRow ? summary(lastRow, options.target) : null,
    interrupted,
    resumeToken: cursor ? token(cursor) : null,
    lastEventId: lastRow?.id ?? options.after?.id ?? null,
    upperBound,
    elapsedMs: Date.now() - startedAt,
  };
}

/** The error of a replay whose publish failed, with where it stopped and the token to resume from. */
function replayStopped(
  error: unknown,
  at: { replayId: string; sent: number; total: number; lastEventId: string | null; resumeToken: string | null; upperBound: string },
): EventBusError {
  return new EventBusError('PUBLISH_FAILED', `replay ${at.replayId} stopped after ${at.sent} event(s): ${errorMessage(error)}`, {
    cause: error,
    retriable: true,
    details: at,
  });
}

/**
 * A transient failure (broker briefly away, a just-created topic's metadata not yet
 * everywhere) is retried a few times with backoff, like the relay does; a refused message
 * or a persisting outage ends the replay with its resume point.
 */
const PUBLISH_ATTEMPTS = 4;
async function publishWithRetries(publisher: MessagePublisher, messages: OutboundMessage[], signal: AbortSignal | undefined): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await publisher.publish(messages);
      return;
    } catch (error) {
      const transient = error instanceof PublishError && error.kind === 'transient';
      if (!transient || attempt >= PUBLISH_ATTEMPTS || signal?.aborted) throw error;
      await sleep(reconnectDelayMs(attempt - 1, { initialMs: 250, maxMs: 2000 }), signal);
    }
  }
}

function summary(row: ReplayedRow, target: ReplayTarget): EventSummary {
  return { id: row.id, eventType: row.eventType, createdAt: row.cursor.createdAt, topic: targetTopic(target, row.eventType) };
}
