import { hostname } from 'node:os';
import pg from 'pg';
import { backoffDelayMs, encodeEvent, sleep, Wakeup } from '@eventbus/core';
import { KafkaPublisher, PublishError, type MessagePublisher, type OutboundMessage } from '@eventbus/kafka';
import { SHARD_COUNT } from '@eventbus/schema';
import { RelayMetrics } from './metrics.js';
import { PgListenNotifier } from './notifier/pg-listen-notifier.js';
import { OUTBOX_CHANNEL, type OutboxNotifier } from './notifier/outbox-notifier.js';
import { resolveRelayOptions, type OutboxRelayOptions, type ResolvedRelayOptions } from './options.js';
import { claimBatch, type ClaimedRow } from './sql/claim-batch.js';
import { deadLetterRow, returnForRetry } from './sql/record-publish-failure.js';
import { heartbeat, removeInstance } from './sql/relay-instances.js';
import { ALL_SHARDS, announcePresence, countLiveInstances, tryLockShards, unlockShards } from './sql/shard-locks.js';

/** What `/readyz` reports. */
export interface RelayHealth {
  /** The relay loop runs. */
  live: boolean;
  /** Postgres, Kafka and the LISTEN connection all answer. */
  ready: boolean;
  checks: { postgres: boolean; kafka: boolean; listen: boolean };
  instanceId: string;
  shards: number[];
}

/**
 * Publishes committed outbox rows to Kafka: claim → publish → acknowledge.
 *
 * One loop per instance, on one dedicated Postgres connection that holds both the shard
 * locks and the claim transactions (see sql/shard-locks.ts for why they must share it).
 * The loop runs again at once while claims come back full, otherwise sleeps until a
 * NOTIFY, the fallback poll or the next rebalance. A broker or database outage rolls the
 * batch back and backs off (rows stay pending, no attempt is spent); a row Kafka refuses
 * for its own sake is retried per `retryConfig`, then moved to the DLQ table.
 */
export class OutboxRelay {
  readonly metrics = new RelayMetrics();
  private readonly options: ResolvedRelayOptions;
  private readonly publisher: MessagePublisher;
  private readonly notifier: OutboxNotifier;
  private readonly wakeup = new Wakeup();
  private readonly host = hostname();
  private client: pg.Client | undefined;
  private owned = new Set<number>();
  /** Last time each owned shard gave rows: the claim serves the longest-waiting first. */
  private readonly lastServed = new Map<number, number>();
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private postgresOk = false;
  private kafkaOk = false;
  private publisherConnected = false;
  private selfTestPending = false;

  constructor(options: OutboxRelayOptions) {
    this.options = resolveRelayOptions(options);
    this.publisher =
      this.options.publisher ?? new KafkaPublisher({ brokers: this.options.brokers, clientId: this.options.clientId });
    this.notifier = this.options.notifier ?? new PgListenNotifier(this.options.connectionString);
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** Connects and starts the loop. Fails fast (and cleans up) when Postgres or Kafka cannot be reached at boot. */
  async start(): Promise<void> {
    if (this.loop) return;
    if (this.stopping) throw new Error('OutboxRelay was stopped; create a new instance');
    const log = this.options.logger;
    const abort = new AbortController();
    this.abort = abort;
    try {
      await this.publisher.connect();
      this.publisherConnected = true;
      this.kafkaOk = true;
      await this.connectClaimConnection();
      await this.notifier.start({
        onNotify: () => {
          this.selfTestPending = false;
          this.wakeup.wake();
        },
        // After every (re)connect: notifications sent meanwhile are lost, so sweep now.
        onConnected: () => {
          log.info({ reconnects: this.notifier.reconnects }, 'listening for outbox notifications');
          this.wakeup.wake();
        },
        onError: (error) => log.warn({ err: error.message }, 'outbox listener error; reconnecting'),
      });
      await this.notifySelfTest();
    } catch (error) {
      await this.release();
      throw error;
    }
    log.info({ instanceId: this.instanceId, batchSize: this.options.batchSize, pollIntervalMs: this.options.pollIntervalMs }, 'relay started');
    this.loop = this.run(abort.signal);
  }

  /**
   * Stops claiming, lets the batch in flight finish (up to `shutdownGraceMs`, then rolls it
   * back), releases the shards and closes connections. Idempotent; safe before `start()`.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort?.abort();
      if (this.loop) {
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          this.loop.then(() => true),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.options.shutdownGraceMs))),
        ]);
        clearTimeout(timer);
        if (!finished) {
          this.options.logger.warn({ graceMs: this.options.shutdownGraceMs }, 'batch still in flight after the grace period; rolling it back');
          this.dropClaimConnection();
          await this.loop;
        }
      }
      await this.release();
      this.options.logger.info({ instanceId: this.instanceId }, 'relay stopped');
    })();
    return this.stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  health(): RelayHealth {
    const checks = { postgres: this.postgresOk && this.client !== undefined, kafka: this.kafkaOk, listen: this.notifier.connected };
    return {
      live: this.loop !== undefined && this.stopping === undefined,
      ready: checks.postgres && checks.kafka && checks.listen && this.stopping === undefined,
      checks,
      instanceId: this.instanceId,
      shards: [...this.owned].sort((a, b) => a - b),
    };
  }

  /** Reconnects of the LISTEN connection since start. */
  get listenReconnects(): number {
    return this.notifier.reconnects;
  }

  /** Shards this instance publishes now. */
  get shards(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { logger: log, batchSize, pollIntervalMs, rebalanceIntervalMs, maxOutageBackoffMs } = this.options;
    let failures = 0;
    let nextRebalance = 0;
    while (!signal.aborted) {
      try {
        if (!this.client) await this.connectClaimConnection();
        if (Date.now() >= nextRebalance) {
          await this.rebalance();
          nextRebalance = Date.now() + rebalanceIntervalMs;
        }
        const claimed = await this.relayOneBatch();
        if (failures > 0) log.info({ afterFailures: failures }, 'relay recovered');
        failures = 0;
        if (claimed >= batchSize) continue; // more is waiting: no sleep
        await this.wakeup.wait(Math.min(pollIntervalMs, Math.max(0, nextRebalance - Date.now())), signal);
      } catch (error) {
        failures++;
        this.metrics.transientFailures++;
        const delay = Math.min(maxOutageBackoffMs, 100 * 2 ** Math.min(failures, 16)) * (0.8 + Math.random() * 0.4);
        log.warn({ err: errorMessage(error), failures, retryInMs: Math.round(delay) }, 'relay batch failed; backing off (rows stay pending)');
        if (!(error instanceof PublishError)) {
          // Postgres failed: its locks went with the connection; start over from a new one.
          this.postgresOk = false;
          this.dropClaimConnection();
        }
        await sleep(delay, signal);
      }
    }
  }

  /** Claims, publishes and acknowledges one batch; returns how many rows it claimed. */
  private async relayOneBatch(): Promise<number> {
    const client = this.client!;
    if (this.owned.size === 0) return 0;
    const shards = [...this.owned].sort((a, b) => (this.lastServed.get(a) ?? 0) - (this.lastServed.get(b) ?? 0));
    await client.query('BEGIN');
    try {
      const rows = await claimBatch(client, shards, this.options.batchSize);
      this.postgresOk = true;
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const outcomes = rows.map((row) => this.toMessage(row));
      const sendable = outcomes.filter((o): o is { row: ClaimedRow; message: OutboundMessage } => 'message' in o);
      try {
        await this.publisher.publish(sendable.map((o) => o.message));
        this.kafkaOk = true;
      } catch (error) {
        if (!(error instanceof PublishError) || error.kind === 'transient') throw this.kafkaFailed(error);
        // Kafka refused something in the batch: find which rows, one at a time and in order.
        await this.publishOneByOne(sendable, outcomes);
      }
      await this.recordFailures(client, outcomes);
      await client.query('COMMIT');
      this.afterCommit(rows, outcomes);
      return rows.length;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  private toMessage(row: ClaimedRow): { row: ClaimedRow; message: OutboundMessage } | { row: ClaimedRow; error: Error } {
    try {
      const topic = this.options.router.topicFor(row.eventType);
      return { row, message: { topic, ...encodeEvent(row) } };
    } catch (error) {
      return { row, error: error as Error };
    }
  }

  private async publishOneByOne(
    sendable: Array<{ row: ClaimedRow; message: OutboundMessage }>,
    outcomes: Array<{ row: ClaimedRow; message?: OutboundMessage; error?: Error }>,
  ): Promise<void> {
    for (const item of sendable) {
      try {
        await this.publisher.publish([item.message]);
      } catch (error) {
        if (!(error instanceof PublishError) || error.kind === 'transient') throw this.kafkaFailed(error);
        const outcome = outcomes.find((o) => o.row === item.row)!;
        outcome.error = error;
      }
    }
    this.kafkaOk = true;
  }

  /** Rows that failed for their own sake go back with a later due time, or to the DLQ table. */
  private async recordFailures(client: pg.Client, outcomes: Array<{ row: ClaimedRow; message?: OutboundMessage; error?: Error }>) {
    const { retryConfig, logger: log } = this.options;
    for (const { row, message, error } of outcomes) {
      if (!error) continue;
      this.metrics.publishFailures++;
      const attempts = row.attempts + 1;
      if (attempts > retryConfig.maxRetries) {
        await deadLetterRow(client, row, { topic: message?.topic ?? '', headers: message?.headers ?? {} }, attempts, error);
        this.metrics.deadLettered++;
        log.error({ eventId: row.id, tenantId: row.tenantId, eventType: row.eventType, attempts, err: error.message }, 'event moved to the DLQ table (stage relay)');
      } else {
        const delay = backoffDelayMs(retryConfig, attempts);
        await returnForRetry(client, row, attempts, delay, error.message);
        log.warn({ eventId: row.id, tenantId: row.tenantId, attempts, retryInMs: delay, err: error.message }, 'event refused by Kafka; will retry');
      }
    }
  }

  private afterCommit(rows: ClaimedRow[], outcomes: Array<{ row: ClaimedRow; error?: Error; message?: OutboundMessage }>) {
    const now = Date.now();
    this.metrics.batches++;
    this.metrics.batchSize.observe(rows.length);
    for (const { row, error, message } of outcomes) {
      this.lastServed.set(row.shard, now);
      if (error || !message) continue;
      this.metrics.published++;
      this.metrics.publishedByTopic.set(message.topic, (this.metrics.publishedByTopic.get(message.topic) ?? 0) + 1);
      this.metrics.publishLatency.observe(now - row.createdAt.getTime());
    }
  }

  private kafkaFailed(error: unknown): Error {
    this.kafkaOk = false;
    return error instanceof PublishError ? error : new PublishError('transient', errorMessage(error), { cause: error });
  }

  /**
   * Spreads shards over the live instances: each aims at ceil(SHARD_COUNT / live). An
   * instance above its share releases the surplus between batches; one below it takes free
   * shards. The shards of an instance that died are free as soon as Postgres closes its
   * connection, and are taken at the next rebalance.
   */
  private async rebalance(): Promise<void> {
    const client = this.client!;
    const live = await countLiveInstances(client);
    const target = Math.ceil(SHARD_COUNT / live);
    if (this.owned.size > target) {
      const surplus = [...this.owned].sort((a, b) => b - a).slice(0, this.owned.size - target);
      await unlockShards(client, surplus);
      for (const s of surplus) this.owned.delete(s);
      this.options.logger.info({ released: surplus.length, live, owned: this.owned.size }, 'released shards to other instances');
    } else if (this.owned.size < target) {
      const candidates = shuffle(ALL_SHARDS.filter((s) => !this.owned.has(s)));
      const taken = await tryLockShards(client, candidates, target - this.owned.size);
      for (const s of taken) this.owned.add(s);
      if (taken.length > 0) {
        this.options.logger.info({ taken: taken.length, live, owned: this.owned.size }, 'took shards');
        this.wakeup.wake();
      }
    }
    await heartbeat(client, this.instanceId, this.host, this.shards);
    this.postgresOk = true;
  }

  private async connectClaimConnection(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: `eventbus-relay ${this.instanceId}`.slice(0, 63),
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    // Errors on an idle connection surface here; the loop notices on its next query.
    client.on('error', (error) => this.options.logger.warn({ err: error.message }, 'claim connection error'));
    await client.connect();
    try {
      // A relay that hangs mid-batch must not hold its rows and shards forever.
      await client.query(`SET idle_in_transaction_session_timeout = '60s'`);
      await client.query(`SET statement_timeout = '30s'`);
      await announcePresence(client, (process.pid * 1000 + Math.floor(Math.random() * 1000)) % 2_000_000_000);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.owned = new Set();
    this.postgresOk = true;
  }

  private dropClaimConnection(): void {
    const client = this.client;
    this.client = undefined;
    this.owned = new Set();
    // Ending the connection releases its locks and rolls back any open claim.
    client?.end().catch(() => undefined);
  }

  /** LISTEN silently never fires through PgBouncer (transaction pooling) or on a replica: say so at boot. */
  private async notifySelfTest(): Promise<void> {
    this.selfTestPending = true;
    await this.client!.query(`SELECT pg_notify($1, '')`, [OUTBOX_CHANNEL]);
    const deadline = Date.now() + 3000;
    while (this.selfTestPending && Date.now() < deadline) await sleep(20);
    if (this.selfTestPending) {
      this.options.logger.warn(
        { pollIntervalMs: this.options.pollIntervalMs },
        'LISTEN/NOTIFY self-test failed: no notification came back within 3 s (PgBouncer in transaction mode, or a read replica?). Relying on the fallback poll.',
      );
    }
  }

  private async release(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      await unlockShards(client, [...this.owned]).catch(() => undefined);
      await removeInstance(client, this.instanceId).catch(() => undefined);
      await client.end().catch(() => undefined);
    }
    this.owned = new Set();
    await this.notifier.stop();
    if (this.publisherConnected) await this.publisher.disconnect().catch(() => undefined);
    this.publisherConnected = false;
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
