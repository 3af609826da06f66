import type pg from 'pg';
import { eventTypeMatcher, eventTypePatternProblem, invalidConfig, type BusEvent } from '@eventbus/core';
import { eventPages } from './event-pages.js';
import { checkEventIds } from './event-ids.js';
import { resolveReplayFilter, type ReplayFilter } from './replay-filter.js';

/** What `EventReplay` accepts as a database: a pg Pool or Client, or a Drizzle node-postgres db. */
export type EventLogDatabase = pg.Pool | pg.ClientBase | { $client: pg.Pool | pg.ClientBase };

/** A handler of replayed events; `replayed` tells it the event is history, not news. */
export type ReplayHandler = (event: BusEvent, context: { replayed: true }) => Promise<void> | void;

export interface ReplaySubscription {
  /** Patterns as for consumers: `product.*`, `product.#`, `pricechange.applied`. */
  eventTypes: readonly string[];
  handler: ReplayHandler;
}

export interface ReplayOptions extends ReplayFilter {
  /** Stops after the page in progress; `replay` then resolves with the count so far. */
  signal?: AbortSignal;
  pageSize?: number;
}

/**
 * The in-process replay: reads a tenant's EventLog window in keyset pages and hands
 * each event, in (created_at, id) order, to every subscribed handler whose patterns match.
 * No Kafka is involved (for republishing to Kafka, see `republishEvents`).
 *
 * Handlers run one event at a time, in order; a handler that throws stops the replay and
 * the error propagates (the events before it were handled, the rest were not).
 */
export class EventReplay {
  private readonly db: pg.Pool | pg.ClientBase;
  private readonly subscriptions: Array<{ matches: (type: string) => boolean; handler: ReplayHandler }> = [];

  constructor(db: EventLogDatabase) {
    this.db = '$client' in db ? db.$client : db;
  }

  subscribe(subscription: ReplaySubscription): void {
    if (subscription.eventTypes.length === 0) throw invalidConfig('subscribe.eventTypes', 'at least one pattern', '[]');
    for (const pattern of subscription.eventTypes) {
      const problem = eventTypePatternProblem(pattern);
      if (problem) throw invalidConfig('subscribe.eventTypes', `valid patterns (${JSON.stringify(pattern)} ${problem})`, pattern);
    }
    this.subscriptions.push({ matches: eventTypeMatcher(subscription.eventTypes), handler: subscription.handler });
  }

  /**
   * Replays the window; returns how many events reached at least one handler. With `eventIds`,
   * an id the tenant's EventLog does not have fails with UNKNOWN_EVENT_ID before any handler runs.
   */
  async replay(options: ReplayOptions): Promise<number> {
    const filter = resolveReplayFilter(options);
    await checkEventIds(this.db, filter);
    let processed = 0;
    const pageOptions = { ...(options.signal ? { signal: options.signal } : {}), ...(options.pageSize ? { pageSize: options.pageSize } : {}) };
    for await (const page of eventPages(this.db, filter, pageOptions)) {
      for (const row of page) {
        const handlers = this.subscriptions.filter((s) => s.matches(row.eventType));
        if (handlers.length === 0) continue;
        const event: BusEvent = {
          id: row.id,
          tenantId: row.tenantId,
          projectId: row.projectId,
          eventKey: row.eventKey,
          eventType: row.eventType,
          version: row.version,
          payload: JSON.parse(row.payloadJson),
          correlationId: row.correlationId,
          causationId: row.causationId,
          createdAt: row.createdAt,
        };
        for (const s of handlers) await s.handler(event, { replayed: true });
        processed++;
      }
    }
    return processed;
  }
}
