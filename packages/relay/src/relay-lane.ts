import pg from 'pg';
import { backoffDelayMs, encodeEvent, errorMessage, type FailedEvent, reconnectDelayMs, sleep, summarizeFailures, Wakeup } from '@eventbus/core';
import { PublishError, type MessagePublisher, type OutboundMessage } from '@eventbus/kafka';
import { CLAIM_SESSION_SQL, claimBatch, type ClaimedRow, returnForRetry, type RetryRow } from '@eventbus/outbox';
import { SHARD_COUNT } from '@eventbus/schema/shards';
import type { KafkaFailover } from './kafka-failover.js';
import type { RelayMetrics } from './metrics.js';
import { publishBisecting } from './publish-bisecting.js';
import type { ResolvedRelayOptions } from './options.js';
import { type DeadRow, deadLetterRows } from './sql/record-publish-failure.js';
import { heartbeat, removeInstance } from './sql/relay-instances.js';
import { ALL_SHARDS, announcePresence, countLiveInstances, tryLockShards, unlockShards, withdrawPresence } from './sql/shard-locks.js';
import { changeShardSleep } from './sql/shard-sleep.js';
import { type HoldOutcome, LaneTopicHolds, type TopicHolds } from './topic-holds.js';

/** What every lane of one relay shares: the options, the Kafka publisher, the counters and Kafka's health. */
export interface LaneContext {
  options: ResolvedRelayOptions;
  publisher: MessagePublisher;
  metrics: RelayMetrics;
  host: string;
  /** The instance's Kafka failover: shared, since the lanes share the Kafka client. */
  failover: KafkaFailover;
  /** Topics Kafka said do not exist: shared, so one lane's refusal spares the others the same answer. */
  holds: TopicHolds;
}

/** recordFailures' report when nothing failed for its own sake (the common case): no closure per batch. */
const NOTHING_TO_REPORT = (): void => undefined;

/** A message the relay built from an event row: its key and headers are text (encodeEvent). */
type RelayMessage = OutboundMessage & { key: string; headers: Record<string, string> };
/**
 * A claimed row, its message once built, and its failure if any (`held`: by its topic's hold,
 * topic-holds.ts; `returned`: back in the outbox already, returnHeldRows).
 */
type Outcome = HoldOutcome & { message?: RelayMessage; returned?: boolean };

/**
 * Longest wait before probing again an awake shard that a producer is writing to (its sleep
 * lock refused, sql/shard-sleep.ts): the wait starts at 1 ms and doubles while the shard stays
 * empty and busy. The producer skipped NOTIFY, so this wait is its row's delay after its commit;
 * a transaction held open longer costs a claim of that shard every 16 ms until it ends.
 */
const AWAKE_PROBE_MAX_WAIT_MS = 16;

/**
 * One claim connection, the shards it holds, and its claim → publish → acknowledge loop.
 *
 * The shard locks and the claim transactions live on this one connection, so they cannot
 * diverge: if the connection dies, Postgres releases the locks and rolls back the claim in
 * flight at the same moment, and another lane may take the shard without ever publishing
 * beside this one. Within a lane, batch N+1 is claimed only after batch N was acknowledged
 * and committed, which keeps each tenant (one shard, one lane) in order.
 *
 * Why several lanes per relay: one lane spends its time alternately waiting for Postgres
 * (claim, commit) and for Kafka (send). Two lanes over disjoint shards overlap one's send
 * with the other's claim and commit: the drain runs at the pace of the slower resource
 * instead of the sum of both (`pnpm bench --only relay`). Each lane counts as one
 * participant when shards are spread (a presence lock of its own), so the same rebalance
 * rules hold whether lanes share a process or not.
 */
export class RelayLane {
  readonly wakeup = new Wakeup();
  postgresOk = false;
  /** Outcome of this lane's last Kafka round trip (per lane, so one failing lane is not masked by a healthy one). */
  kafkaOk = true;
  private client: pg.Client | undefined;
  private owned = new Set<number>();
  /** Last time each owned shard gave rows: the claim serves the longest-waiting first. */
  private readonly lastServed = new Map<number, number>();
  /**
   * Shards a notification named since the last claim: the next claim probes only these,
   * unless a sweep of every owned shard is due. Each probe of an empty shard walks the
   * dead index entries of rows claimed before, so probing all 32 shards of a lane for one
   * new row took ~3 ms of the ~6 ms a quiet relay spent per event (`pnpm bench --only latency`).
   */
  private readonly notified = new Set<number>();
  /** When the next claim must probe every owned shard: the fallback poll, after a (re)connect, new shards or a failure. */
  private nextSweepAt = 0;
  /** This connection holds its presence lock (counts in the shard split); false while the instance is handed over. */
  private present = false;
  /**
   * Owned shards whose sleep lock this lane holds (sql/shard-sleep.ts): their producers notify,
   * and a claim probes them when notified or swept. The other owned shards are awake: their
   * producers skip NOTIFY, so every claim probes them until they go to sleep again.
   */
  private sleeping = new Set<number>();
  /** Shards put to sleep since the last claim: the next claim probes them once more (rows written before the lock without a notification). */
  private recheck = new Set<number>();
  /** Consecutive waits for an awake shard that a producer is writing to: the wait doubles each time (AWAKE_PROBE_MAX_WAIT_MS). */
  private awakeWaits = 0;
  /** This lane's side of the topic holds: rows of missing topics held back, returned and woken. */
  private readonly topicHolds: LaneTopicHolds;

  constructor(
    private readonly ctx: LaneContext,
    /** Shown in relay_instances: the relay's instance id, plus `/lane-N` when it runs several lanes. */
    readonly laneId: string,
  ) {
    const { holds, publisher, metrics, options } = ctx;
    const { router } = options;
    this.topicHolds = new LaneTopicHolds({ holds, publisher, topicFor: (eventType) => router.topicFor(eventType), metrics, logger: options.logger, laneId });
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  get shards(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  /**
   * New rows may wait in these shards (a notification's mask), or, with no shards given,
   * anywhere (a listener reconnect: notifications were lost). Wakes the loop.
   */
  rowsMayWait(shards?: readonly number[]): void {
    if (shards === undefined) {
      this.nextSweepAt = 0;
      this.wakeup.wake();
      return;
    }
    const mine = shards.filter((shard) => this.owned.has(shard));
    for (const shard of mine) this.notified.add(shard);
    if (mine.length > 0) this.wakeup.wake();
  }

  /** The loop: runs until `signal` aborts. Never throws; outages back off and retry. */
  async run(signal: AbortSignal): Promise<void> {
    const { logger: log, batchSize, rebalanceIntervalMs, maxOutageBackoffMs } = this.ctx.options;
    let failures = 0;
    let nextRebalance = 0;
    while (!signal.aborted) {
      try {
        if (!this.client) {
          await this.connect();
          nextRebalance = 0; // a new connection holds no shards: take a share at once
        }
        if (this.ctx.failover.handedOver) {
          await this.sitOutHandover(signal);
          continue;
        }
        if (!this.present) {
          // Back from a handover: count in the split again and take a share at once.
          await announcePresence(this.client!);
          this.present = true;
          this.kafkaOk = true;
          nextRebalance = 0;
        }
        if (Date.now() >= nextRebalance) {
          await this.rebalance();
          nextRebalance = Date.now() + rebalanceIntervalMs;
        }
        const claimed = await this.relayOneBatch();
        if (failures > 0) log.info({ lane: this.laneId, afterFailures: failures }, 'relay recovered');
        failures = 0;
        if (claimed >= batchSize || this.recheck.size > 0) continue; // more is waiting, or shards just put to sleep are due their re-check
        if (this.sleeping.size < this.owned.size) {
          // Awake shards: their producers do not notify. Rows came: claim again at once; none
          // came and a producer is writing to one of them (its sleep lock was refused): shortly.
          if (claimed > 0) this.awakeWaits = 0;
          else await this.wakeup.wait(Math.min(AWAKE_PROBE_MAX_WAIT_MS, 2 ** this.awakeWaits++), signal);
          continue;
        }
        this.awakeWaits = 0;
        // Every shard sleeps: until a notification, the next rebalance or the next sweep (the fallback poll).
        await this.wakeup.wait(Math.max(0, Math.min(nextRebalance, this.nextSweepAt) - Date.now()), signal);
      } catch (error) {
        this.nextSweepAt = 0; // the batch rolled back (or never ran): its rows are pending again
        failures++;
        this.ctx.metrics.transientFailures++;
        const delay = reconnectDelayMs(failures, { initialMs: 100, maxMs: maxOutageBackoffMs, jitter: true });
        log.warn(
          { lane: this.laneId, err: errorMessage(error), failures, retryInMs: Math.round(delay) },
          'relay batch failed; backing off (rows stay pending)',
        );
        if (!(error instanceof PublishError)) {
          // Postgres failed: its locks went with the connection; start over from a new one.
          this.postgresOk = false;
          this.dropConnection();
        } else if (await this.handOverIfDue(signal)) {
          continue; // no backoff: the loop's next turn releases the shards
        }
        await sleep(delay, signal);
      }
    }
  }

  /** Opens the claim connection and announces this lane as a participant in the shard split. */
  async connect(): Promise<void> {
    const { options } = this.ctx;
    const client = new pg.Client({
      connectionString: options.connectionString,
      application_name: applicationName(this.laneId),
      keepAlive: true,
      connectionTimeoutMillis: options.connectTimeoutMs,
    });
    // Errors on an idle connection surface here; the loop notices on its next query.
    client.on('error', (error) => options.logger.warn({ lane: this.laneId, err: error.message }, 'claim connection error'));
    await client.connect();
    try {
      // A relay that hangs mid-batch must not hold its rows and shards forever.
      await client.query(`SET idle_in_transaction_session_timeout = '60s'`);
      await client.query(`SET statement_timeout = '30s'`);
      await client.query(CLAIM_SESSION_SQL);
      // While the instance is handed over (Kafka unreachable from here), a new connection stays out of the split.
      if (!this.ctx.failover.handedOver) await announcePresence(client);
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.forgetShards();
    this.nextSweepAt = 0;
    this.postgresOk = true;
    this.present = !this.ctx.failover.handedOver;
  }

  /** Backend pid of the claim connection (its presence lock is keyed by it), when connected. */
  get backendPid(): number | undefined {
    return (this.client as (pg.Client & { processID?: number }) | undefined)?.processID;
  }

  /** Sends a NOTIFY on the outbox channel through this lane's connection (the boot self-test). */
  async notify(channel: string): Promise<void> {
    await this.client!.query(`SELECT pg_notify($1, '')`, [channel]);
  }

  /** Ends the connection at once: Postgres rolls back the claim in flight and frees the shards. */
  dropConnection(): void {
    const client = this.client;
    this.client = undefined;
    this.forgetShards();
    client?.end().catch(() => undefined);
  }

  /** The connection's session locks (shards and sleep flags) are gone or about to be. */
  private forgetShards(): void {
    this.owned = new Set();
    this.sleeping = new Set();
    this.recheck = new Set();
  }

  /** Graceful end: unlocks the shards, removes the instance row, closes the connection. */
  async release(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) {
      // A failure here costs nothing lasting (session locks end with the connection, and the
      // instance row expires), but it says the connection was already broken: log it.
      const logged = (what: string) => (error: unknown) =>
        this.ctx.options.logger.warn({ lane: this.laneId, err: errorMessage(error) }, `${what} failed at release; the connection's end frees it`);
      await unlockShards(client, [...this.owned]).catch(logged('unlocking the shards'));
      await removeInstance(client, this.laneId).catch(logged('removing the instance row'));
      await client.end().catch(() => undefined);
    }
    this.forgetShards();
  }

  /**
   * The shards the next claim probes, least recently served first: every owned shard when
   * a sweep is due, else the awake ones, those put to sleep since the last claim (their
   * re-check) and those notified since the last claim. Taken (cleared) before the claim: a
   * notification that arrives during the claim marks its shard for the next one.
   * No row is missed by this: Postgres signals listeners only after the notifying
   * transaction is visible, so a row whose notification was taken here is in this claim's
   * snapshot; a producer that skipped NOTIFY wrote to an awake shard, which every claim
   * probes until it sleeps, and it committed before the sleep lock was granted, so the
   * re-check sees its row (sql/shard-sleep.ts); rows without a notification otherwise
   * (eventbus.notify = 'off', a lost one, a producer of a shard this lane did not own yet)
   * wait at most for the sweep, every pollIntervalMs.
   */
  private takeShardsToClaim(): { shards: number[]; sweep: boolean } {
    const now = Date.now();
    const sweep = now >= this.nextSweepAt;
    const chosen = sweep ? [...this.owned] : [...this.owned].filter((s) => !this.sleeping.has(s) || this.recheck.has(s) || this.notified.has(s));
    this.notified.clear();
    this.recheck.clear();
    if (sweep) this.nextSweepAt = now + this.ctx.options.pollIntervalMs;
    return { shards: chosen.sort((a, b) => (this.lastServed.get(a) ?? 0) - (this.lastServed.get(b) ?? 0)), sweep };
  }

  /** Claims, publishes and acknowledges one batch; returns how many rows it claimed. */
  private async relayOneBatch(): Promise<number> {
    const client = this.client!;
    if (this.owned.size === 0) {
      // Nothing to sweep until the next rebalance gives shards (which are probed at once):
      // push the sweep out, or the loop's wait would be 0 ms and spin.
      this.nextSweepAt = Date.now() + this.ctx.options.pollIntervalMs;
      return 0;
    }
    const { shards, sweep } = this.takeShardsToClaim();
    if (shards.length === 0) return 0;
    const { claimed, shardsWithRows } = await this.claimPublishAcknowledge(client, shards);
    // A full batch leaves rows behind in some of these shards: probe them again at once.
    const full = claimed >= this.ctx.options.batchSize;
    if (full) {
      if (sweep) this.nextSweepAt = 0;
      else for (const shard of shards) this.notified.add(shard);
    }
    await this.settleSleep(client, full ? [] : shards.filter((s) => !shardsWithRows.has(s)));
    return claimed;
  }

  /**
   * After a claim, moves shards between awake and asleep (sql/shard-sleep.ts), in one round
   * trip and only on a change:
   * - an awake shard the claim found empty goes to sleep, unless a producer is writing to it
   *   right now (its lock is refused: it stays awake); the next claim re-checks it;
   * - a sleeping shard notified while the claim ran gets commits faster than this lane claims:
   *   it wakes, so its producers stop notifying, and every claim probes it until it is empty.
   * A shard notified only while the lane waits stays asleep: a quiet relay runs one claim per
   * notification, as without the sleep flags.
   */
  private async settleSleep(client: pg.Client, emptyShards: number[]): Promise<void> {
    const toSleep = emptyShards.filter((s) => !this.sleeping.has(s));
    const toWake = [...this.notified].filter((s) => this.sleeping.has(s));
    if (toSleep.length === 0 && toWake.length === 0) return;
    const asleep = await changeShardSleep(client, toSleep, toWake);
    for (const s of toWake) this.sleeping.delete(s);
    for (const s of asleep) {
      this.sleeping.add(s);
      this.recheck.add(s);
    }
  }

  /** Claims, publishes and acknowledges one batch of `shards`; returns how many rows it claimed and from which shards. */
  private async claimPublishAcknowledge(client: pg.Client, shards: number[]): Promise<{ claimed: number; shardsWithRows: Set<number> }> {
    // Before the claim's snapshot: a hold another lane ends during this claim still counts for
    // its rows (LaneTopicHolds.holdBack).
    const heldAtClaim = this.ctx.holds.heldTopics();
    await client.query('BEGIN');
    let appeared: Set<string>;
    let outcomes: Outcome[];
    let pastHold: Set<string> | undefined;
    try {
      const rows = await claimBatch(client, shards, this.ctx.options.batchSize);
      this.postgresOk = true;
      if (rows.length === 0) {
        await client.query('COMMIT');
        return { claimed: 0, shardsWithRows: new Set() };
      }
      outcomes = rows.map((row) => this.toMessage(row));
      // Marks the rows of held topics at once; asking Kafka whether a topic whose hold ran out
      // exists goes on during the send, which it cannot change (LaneTopicHolds.holdBack).
      const checked = this.topicHolds.holdBack(outcomes, heldAtClaim);
      // Awaited only after a send that succeeded: a failure of it after a failed send (a logger
      // that throws) must not be an unhandled rejection, which ends the process.
      checked.catch(() => undefined);
      const offered = outcomes.filter((o) => o.message !== undefined && o.held === undefined);
      const refused = this.refuseBeforeSend(offered);
      const sendable = refused.length === 0 ? offered : offered.filter((o) => o.error === undefined);
      // The claim connection waits for Kafka anyway: the held rows go back, and the rows the
      // publisher refuses without a send go to the DLQ table (or wait for their topic), meanwhile,
      // so the batch's commit, and the lane's next claim, do not wait for those statements after
      // the send. Its failure is a value, not a rejection: nothing awaits it until the send is over.
      // allSettled, not all: the batch is rolled back only once both are over, so no statement of
      // one goes out after the ROLLBACK that the other's failure led to.
      const early = Promise.allSettled([
        this.returnHeldRows(client, outcomes),
        refused.length === 0 ? NOTHING_TO_REPORT : this.recordFailures(client, refused),
      ]).then(([held, recorded]) => {
        if (held.status === 'rejected') return { error: held.reason as unknown };
        if (recorded.status === 'rejected') return { error: recorded.reason as unknown };
        for (let i = 0; i < refused.length; i++) refused[i]!.returned = true;
        return { heldReport: held.value, report: recorded.value };
      });
      const sendStartedAt = Date.now();
      try {
        await publishBisecting(this.ctx.publisher, sendable as Array<Outcome & { message: RelayMessage }>);
        this.kafkaOk = true;
        this.ctx.failover.succeeded();
      } catch (error) {
        await early; // rolled back with the batch
        if (!(error instanceof PublishError) || error.kind === 'transient') this.ctx.failover.failed(sendStartedAt);
        throw this.kafkaFailed(error);
      }
      const done = await early;
      if ('error' in done) throw done.error;
      appeared = await checked;
      const report = await this.recordFailures(client, outcomes);
      done.heldReport();
      done.report();
      report();
      await client.query('COMMIT');
      // At once: a wake another lane begins from here on sees the rows this batch parked.
      pastHold = this.topicHolds.parkedPastHold(outcomes);
      this.afterCommit(rows, outcomes);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    for (const topic of this.topicHolds.topicsPublished(outcomes)) appeared.add(topic);
    if (appeared.size > 0) {
      // Throws when the wake fails, the holds kept (endHolds): the loop starts over from a new connection.
      await this.topicHolds.endHolds(client, appeared);
      // The woken rows may be in any of this lane's shards, asleep or not: sweep them all at the
      // next claim (their notification does the same for the other lanes).
      this.nextSweepAt = 0;
    }
    if (pastHold !== undefined) {
      // Throws when the wake fails: the loop starts over from a new connection (restoreFromOutbox).
      await this.topicHolds.wakeParkedPastHold(client, pastHold);
      this.nextSweepAt = 0;
    }
    const shardsWithRows = new Set<number>();
    for (let i = 0; i < outcomes.length; i++) shardsWithRows.add(outcomes[i]!.row.shard);
    return { claimed: outcomes.length, shardsWithRows };
  }

  private toMessage(row: ClaimedRow): Outcome {
    try {
      const topic = this.ctx.options.router.topicFor(row.eventType);
      // The fields named, not `{ topic, ...encodeEvent(row) }`: a spread copies field by field
      // into a growing object, once per event relayed.
      const { key, value, headers } = encodeEvent(row);
      return { row, message: { topic, key, value, headers } };
    } catch (error) {
      return { row, error: error as Error };
    }
  }

  /**
   * Marks the rows of `offered` the publisher refuses without a send (too large for their
   * topic, a topic that does not exist: MessagePublisher.refusalsBeforeSend) with their refusal
   * and returns them. A row the publisher cannot judge without asking Kafka (a topic it has not
   * met) is offered: publish refuses it if it must, and it is recorded after the send.
   */
  private refuseBeforeSend(offered: Outcome[]): Outcome[] {
    const { publisher } = this.ctx;
    if (!publisher.refusalsBeforeSend || offered.length === 0) return [];
    const refusals = publisher.refusalsBeforeSend(offered.map((o) => o.message!));
    const refused: Outcome[] = [];
    for (let i = 0; i < offered.length; i++) {
      const refusal = refusals[i];
      if (refusal === undefined) continue;
      offered[i]!.error = refusal;
      refused.push(offered[i]!);
    }
    return refused;
  }

  /**
   * Returns to the outbox the rows the topic holds kept from Kafka whose way back is known before
   * the send (`waiting`: a running hold; `requeued`: a hold another lane ended), in one statement
   * on the claim transaction, and marks them `returned`. Rows of a topic Kafka is being asked
   * about (`checking`) go back with the refused rows, in recordFailures. Resolves to what counts
   * them, for the caller to call once the batch is to be committed (as recordFailures' report).
   */
  private returnHeldRows(client: pg.Client, outcomes: Outcome[]): Promise<() => void> {
    let held: RetryRow[] | undefined;
    let parked = 0;
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome.held !== 'waiting' && outcome.held !== 'requeued') continue;
      const back = this.topicHolds.returnOfHeldRow(outcome, outcome.row.attempts + 1);
      if (!back) continue;
      (held ??= []).push(back);
      if (outcome.held === 'waiting') parked++;
      outcome.returned = true;
    }
    if (held === undefined) return Promise.resolve(NOTHING_TO_REPORT);
    const { metrics } = this.ctx;
    return returnForRetry(client, held).then(() => (parked === 0 ? NOTHING_TO_REPORT : () => void (metrics.heldBack += parked)));
  }

  /**
   * Rows that failed for their own sake go back with a later due time, or to the DLQ table
   * once their retries are spent or at once when a retry cannot help (refusedForGood).
   * Rows of a missing topic (refused by Kafka, or held back by the topic's hold) go back
   * without spending their retries (topic-holds.ts, returnOfHeldRow) and are logged by their
   * hold, once per hold, not per claim. Returns what reports them (counters, and a log line
   * per distinct error: summarizeFailures), for the caller to call once the batch is to be
   * committed: a batch whose send fails rolls these statements back, and its rows are refused
   * and reported again by the claim that takes them next.
   */
  private async recordFailures(client: pg.Client, outcomes: Outcome[]): Promise<() => void> {
    const { retryConfig, logger: log } = this.ctx.options;
    const { metrics } = this.ctx;
    const retries: RetryRow[] = [];
    const waiting: RetryRow[] = [];
    const waited: Outcome[] = [];
    const dead: DeadRow[] = [];
    // Indexed loops over a batch's outcomes, here and below: a for-of allocates an iterator
    // result per row wherever V8 has not optimized the loop away, and these functions run once
    // per batch (BENCH_ALLOC_PROFILE=1 counted ~40 B per event for this one).
    for (let i = 0; i < outcomes.length; i++) {
      const outcome = outcomes[i]!;
      const { row, message, error } = outcome;
      if (!error || outcome.returned) continue;
      const attempts = row.attempts + 1;
      const held = this.topicHolds.returnOfHeldRow(outcome, attempts);
      if (held) {
        waiting.push(held);
        waited.push(outcome);
        continue;
      }
      if (attempts > retryConfig.maxRetries || refusedForGood(error)) {
        dead.push({ row, message: { topic: message?.topic ?? '', headers: message?.headers ?? {} }, attempts, error });
      } else {
        retries.push({ row, attempts, delayMs: backoffDelayMs(retryConfig, attempts), error: error.message });
      }
    }
    await deadLetterRows(client, dead);
    await returnForRetry(client, [...retries, ...waiting]);
    if (dead.length === 0 && retries.length === 0 && waited.length === 0) return NOTHING_TO_REPORT;
    return () => {
      for (let i = 0; i < waited.length; i++) this.topicHolds.countReturned(waited[i]!);
      for (const { row } of dead) {
        metrics.recordPublishFailure(row.eventType);
        metrics.recordDeadLettered(row.eventType);
      }
      for (const { row } of retries) metrics.recordPublishFailure(row.eventType);
      const refusal = ({ row, attempts }: { row: ClaimedRow; attempts: number }, err: string): FailedEvent => ({
        eventId: row.id,
        tenantId: row.tenantId,
        eventType: row.eventType,
        attempts,
        err,
      });
      for (const line of summarizeFailures(dead.map((d) => refusal(d, d.error.message)))) log.error(line, 'event moved to the DLQ table (stage relay)');
      for (const line of summarizeFailures(retries.map((r) => ({ ...refusal(r, r.error), retryInMs: r.delayMs }))))
        log.warn(line, 'event refused by Kafka; will retry');
    };
  }

  private afterCommit(rows: ClaimedRow[], outcomes: Outcome[]): void {
    const { metrics } = this.ctx;
    const now = Date.now();
    metrics.batches++;
    metrics.batchSize.observe(rows.length);
    let published = 0;
    for (let i = 0; i < outcomes.length; i++) {
      const { row, error, message } = outcomes[i]!;
      this.lastServed.set(row.shard, now);
      if (error || !message) continue;
      published++;
      metrics.publishedByTopic.set(message.topic, (metrics.publishedByTopic.get(message.topic) ?? 0) + 1);
      metrics.publishLatency.observe(now - row.createdAt.getTime());
    }
    // Once per batch: each change of `published` is an add to its OpenTelemetry counter.
    metrics.published += published;
  }

  /**
   * While the instance is handed over (kafka-failover.ts): releases this lane's shards and
   * presence, then waits for Kafka to answer, keeping its instance row fresh with no shards.
   * The batch in flight was rolled back before the handover was decided.
   */
  private async sitOutHandover(signal: AbortSignal): Promise<void> {
    const client = this.client!;
    const { failover, host, options } = this.ctx;
    if (this.present) {
      const released = [...this.owned];
      await changeShardSleep(client, [], [...this.sleeping]);
      await unlockShards(client, released);
      this.forgetShards();
      await withdrawPresence(client);
      this.present = false;
      options.logger.warn({ lane: this.laneId, released: released.length }, 'released shards and left the split until Kafka answers');
    }
    while (failover.handedOver && !signal.aborted) {
      await heartbeat(client, this.laneId, host, []);
      await Promise.race([failover.ended(), sleep(options.rebalanceIntervalMs, signal)]);
    }
  }

  /** After a failed publish: whether the whole instance hands its shards over now (kafka-failover.ts). */
  private async handOverIfDue(signal: AbortSignal): Promise<boolean> {
    if (!this.client) return false;
    try {
      return await this.ctx.failover.handOverIfDue(this.client, signal);
    } catch (error) {
      this.ctx.options.logger.warn(
        { lane: this.laneId, err: errorMessage(error) },
        'could not count the other relay instances; starting over from a new connection',
      );
      this.postgresOk = false;
      this.dropConnection();
      return false;
    }
  }

  private kafkaFailed(error: unknown): Error {
    this.kafkaOk = false;
    return error instanceof PublishError ? error : new PublishError('transient', errorMessage(error), { cause: error });
  }

  /**
   * Spreads shards over the live lanes (of all instances): each aims at
   * ceil(SHARD_COUNT / live). A lane above its share releases the surplus between batches;
   * one below it takes free shards. The shards of a lane that died are free as soon as
   * Postgres closes its connection, and are taken at the next rebalance.
   */
  private async rebalance(): Promise<void> {
    const client = this.client!;
    const { logger: log } = this.ctx.options;
    const live = await countLiveInstances(client);
    const target = Math.ceil(SHARD_COUNT / live);
    if (this.owned.size > target) {
      const surplus = [...this.owned].sort((a, b) => b - a).slice(0, this.owned.size - target);
      // Their sleep flags first: the next owner puts them to sleep after its own claim of them.
      await changeShardSleep(
        client,
        [],
        surplus.filter((s) => this.sleeping.has(s)),
      );
      await unlockShards(client, surplus);
      for (const s of surplus) {
        this.owned.delete(s);
        this.sleeping.delete(s);
        this.recheck.delete(s);
      }
      log.info({ lane: this.laneId, released: surplus.length, live, owned: this.owned.size }, 'released shards to other lanes');
    } else if (this.owned.size < target) {
      const candidates = shuffle(ALL_SHARDS.filter((s) => !this.owned.has(s)));
      const taken = await tryLockShards(client, candidates, target - this.owned.size);
      // Before any claim of them (a failure drops the connection, and the shards with it): rows
      // their previous owner, or this instance before a restart, parked for a missing topic.
      await this.topicHolds.restoreFromOutbox(client, taken);
      for (const s of taken) this.owned.add(s);
      if (taken.length > 0) {
        log.info({ lane: this.laneId, taken: taken.length, live, owned: this.owned.size }, 'took shards');
        // Their rows were never notified to this lane.
        for (const s of taken) this.notified.add(s);
        this.wakeup.wake();
      }
    }
    await heartbeat(client, this.laneId, this.ctx.host, this.shards);
    this.postgresOk = true;
  }
}

/**
 * `eventbus-relay <lane id>` within Postgres' 63 bytes: a long instance id is cut, never
 * the `/lane-N` suffix, which `eventbus outbox status` reads to tell the lanes apart.
 */
export function applicationName(laneId: string): string {
  const name = `eventbus-relay ${laneId}`;
  if (Buffer.byteLength(name) <= 63) return name;
  const suffix = /\/lane-\d+$/.exec(laneId)?.[0] ?? '';
  let head = name.slice(0, name.length - suffix.length);
  while (Buffer.byteLength(head + suffix) > 63) head = head.slice(0, -1);
  return head + suffix;
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/**
 * A row larger than its topic accepts is refused again on every retry until an operator raises
 * the topic's max.message.bytes, and each retry deletes and re-inserts it in the outbox, work
 * that every tenant of the lane's shards waits behind: it goes to the DLQ table at once, to be
 * re-driven once the limit is raised. A missing topic is retried: it is fixed by creating the
 * topic, often by a deploy that is already under way.
 */
function refusedForGood(error: Error): boolean {
  return error instanceof PublishError && error.reason === 'too-large';
}
