import pg from 'pg';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { errorMessage, EventBusError, type Logger } from '@eventbus/core';
import { processOnce, type InboxKey, type InboxTransaction } from './inbox.js';
import { checkInboxSchema } from './sql/inbox-schema.js';

/**
 * How long `close` lets the inbox's transactions in flight end by themselves after the grace
 * period: a handler that returned at its deadline may be committing. Past it, their connections
 * are closed.
 */
const SETTLE_MS = 500;
/** How long `close` waits for the pool to end once the stuck connections were closed; past it, stop() goes on without it. */
const CLOSE_MS = 1000;
/** The longest a `ctx.processOnce` waits for a connection (see `InboxPool.acquireTimeoutMs`). */
const MAX_ACQUIRE_MS = 5000;

/** Who holds an inbox connection: the `ctx.processOnce` call it runs. */
export interface InboxCall extends InboxKey {
  subscription: string;
  tenantId: string;
}

interface CheckedOut {
  client: pg.PoolClient;
  call: InboxCall;
  since: number;
}

/**
 * The consumer's pool for `ctx.processOnce`: one transaction per call, on a connection of its own.
 *
 * Sized for every handler that can run at once: `partitionsConsumedConcurrently` batches in the
 * fetch round and as many detached (slow) ones, one handler each, plus two for attempts abandoned
 * on HANDLER_TIMEOUT that are still finishing their transaction (an abandoned attempt keeps its
 * connection until its effect returns). With fewer, a slow tenant's handlers can take every
 * connection and the healthy tenants' processOnce wait behind them. That can still happen when
 * abandoned attempts pile up, so the wait for a connection is bounded (`acquireTimeoutMs`): past
 * it, the attempt fails with a retriable DATABASE_UNAVAILABLE, retried or dead-lettered like any
 * failure, instead of waiting as long as the slowest effect.
 *
 * drizzle-orm is loaded on first use (see inbox.ts).
 */
export class InboxPool {
  private readonly pool: pg.Pool;
  private readonly checkedOut = new Set<CheckedOut>();
  private drizzle: Promise<(client: pg.PoolClient) => NodePgDatabase> | undefined;
  private closing = false;
  readonly maxConnections: number;
  /** Half the handler timeout, so the attempt fails with this error rather than HANDLER_TIMEOUT, and at most MAX_ACQUIRE_MS. */
  readonly acquireTimeoutMs: number;

  constructor(options: { connectionString: string; partitionsConsumedConcurrently: number; handlerTimeoutMs: number }) {
    this.maxConnections = 2 * options.partitionsConsumedConcurrently + 2;
    this.acquireTimeoutMs = Math.max(1, Math.min(MAX_ACQUIRE_MS, Math.floor(options.handlerTimeoutMs / 2)));
    // connectionTimeoutMillis bounds both a new connection and the wait for a free one (pg-pool).
    this.pool = new pg.Pool({ connectionString: options.connectionString, max: this.maxConnections, connectionTimeoutMillis: this.acquireTimeoutMs });
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  /**
   * At start: connects and checks that eventbus.inbox is migrated (checkInboxSchema: one catalog
   * query), so a consumer on a database behind migration 0007 refuses to start instead of failing
   * every processOnce. The connection stays in the pool for the first processOnce.
   */
  async checkSchema(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw new EventBusError(
        'DATABASE_UNAVAILABLE',
        `the consumer's connectionString (for ctx.processOnce): cannot connect to Postgres: ${errorMessage(error)}`,
        {
          cause: error,
          retriable: true,
        },
      );
    }
    client.on('error', ignoreError);
    try {
      await checkInboxSchema(client);
    } finally {
      client.off('error', ignoreError);
      client.release();
    }
  }

  /** Runs `effect` once per (group, event, subscription) in a transaction of its own (processOnce in inbox.ts); returns whether it ran. */
  async processOnce(call: InboxCall, effect: (tx: InboxTransaction) => Promise<void>): Promise<boolean> {
    if (this.closing) throw inboxStopped();
    const drizzle = await this.loadDrizzle();
    const client = await this.acquire();
    const held: CheckedOut = { client, call, since: Date.now() };
    this.checkedOut.add(held);
    // A checked-out client is not covered by the pool's 'error' listener: a server restart, or
    // close() ending a stuck transaction, would otherwise crash the process with its 'error'
    // event. The query in flight rejects with the reason; this is only for the event.
    client.on('error', ignoreError);
    try {
      return await drizzle(client).transaction((tx) => processOnce(tx, call, () => effect(tx)));
    } finally {
      this.checkedOut.delete(held);
      client.off('error', ignoreError);
      // A client whose connection broke is not queryable: pg-pool removes it instead of keeping it.
      client.release();
    }
  }

  /**
   * Ends the pool by `deadline` (the end of stop()'s grace period), or SETTLE_MS from now if
   * later: past it, the connections of transactions still open (a handler stuck inside
   * processOnce, ignoring its signal) are closed and stop() waits at most CLOSE_MS more.
   * Postgres rolls such a transaction back once it notices the closed connection: at once for a
   * session waiting for its client, after the statement it is running otherwise (a pg_sleep, a
   * lock wait), which holds its locks until then. Awaiting pool.end() alone held stop() for as
   * long as such a handler ran. Their events' offsets were not committed (the grace period
   * interrupted them), so the next member delivers them again.
   */
  async close(deadline: number, logger: Logger, groupId: string): Promise<void> {
    this.closing = true;
    const ended = this.pool.end().then(
      () => true,
      () => true,
    );
    if (await settlesBy(ended, Math.max(deadline, Date.now() + SETTLE_MS))) return;
    const now = Date.now();
    const stuck = [...this.checkedOut];
    logger.warn(
      {
        groupId,
        transactions: stuck.map(({ call, since }) => ({ ...call, openForMs: now - since })),
      },
      'stop(): ctx.processOnce transactions still open after the grace period (a handler ignoring its signal); closing their connections: Postgres rolls them back (a statement still running there runs to its end first), and the events are delivered again',
    );
    for (const { client } of stuck) closeConnection(client);
    if (await settlesBy(ended, Date.now() + CLOSE_MS)) return;
    logger.warn({ groupId, connections: this.checkedOut.size }, 'stop(): the inbox pool did not end after its connections were closed; stopping without it');
  }

  /** A connection, or a retriable DATABASE_UNAVAILABLE after acquireTimeoutMs that says why. */
  private async acquire(): Promise<pg.PoolClient> {
    // pg-pool's own test: with every connection made and none idle, connect() waits for a release.
    const waitsForRelease = this.pool.totalCount >= this.maxConnections && this.pool.idleCount === 0;
    try {
      return await this.pool.connect();
    } catch (error) {
      if (!waitsForRelease) {
        throw new EventBusError('DATABASE_UNAVAILABLE', `ctx.processOnce could not connect to Postgres: ${errorMessage(error)}`, {
          cause: error,
          retriable: true,
        });
      }
      const oldest = [...this.checkedOut].sort((a, b) => a.since - b.since)[0];
      const held = oldest
        ? `; the longest held for ${Date.now() - oldest.since} ms by subscription ${JSON.stringify(oldest.call.subscription)}, tenant ${JSON.stringify(oldest.call.tenantId)}, event ${oldest.call.eventId}`
        : '';
      throw new EventBusError(
        'DATABASE_UNAVAILABLE',
        `ctx.processOnce found no free inbox connection within ${this.acquireTimeoutMs} ms: all ${this.maxConnections} are held by handlers inside ctx.processOnce ` +
          `(slow effects, or attempts abandoned on HANDLER_TIMEOUT that ignore their signal)${held}`,
        { cause: error, retriable: true, details: { maxConnections: this.maxConnections, acquireTimeoutMs: this.acquireTimeoutMs } },
      );
    }
  }

  private loadDrizzle(): Promise<(client: pg.PoolClient) => NodePgDatabase> {
    this.drizzle ??= import('drizzle-orm/node-postgres').then(
      ({ drizzle }) =>
        (client: pg.PoolClient) =>
          drizzle(client),
    );
    return this.drizzle;
  }
}

/** `ctx.processOnce` after stop() (a handler abandoned on the grace period, still running): no new inbox transaction. */
export function inboxStopped(): EventBusError {
  return new EventBusError('STOPPED', 'ctx.processOnce was called after the consumer stopped: its inbox pool is closed', { retriable: true });
}

function ignoreError(): void {
  // The query in flight, or the next one, rejects with the reason (see processOnce).
}

/** Closes a client's socket at once: ending it politely would wait for the server, which is busy with the stuck statement. */
function closeConnection(client: pg.PoolClient): void {
  const stream = (client as unknown as pg.Client).connection?.stream;
  if (stream && typeof stream.destroy === 'function') stream.destroy();
  else void (client as unknown as pg.Client).end().catch(() => undefined);
}

/** Whether `work` settled by `deadline` (ms since the epoch). */
async function settlesBy(work: Promise<boolean>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(resolve, Math.max(0, deadline - Date.now()), false)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
