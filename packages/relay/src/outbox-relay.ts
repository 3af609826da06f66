import { hostname } from 'node:os';
import { sleep } from '@eventbus/core';
import { KAFKAJS_PATCH_REVISION, kafkajsPatchRevision, type MessagePublisher } from '@eventbus/kafka';
import { KafkaFailover } from './kafka-failover.js';
import { RelayMetrics } from './metrics.js';
import { logOverdueHold, TopicHolds } from './topic-holds.js';
import { PgListenNotifier } from './notifier/pg-listen-notifier.js';
import { OUTBOX_CHANNEL, parseShardMask, shardsInMask, type OutboxNotifier } from './notifier/outbox-notifier.js';
import { resolveRelayOptions, type OutboxRelayOptions, type ResolvedRelayOptions } from './options.js';
import { RelayLane } from './relay-lane.js';

/** What `/readyz` reports. */
export interface RelayHealth {
  /** The relay loop runs. */
  live: boolean;
  /** Postgres, Kafka and the LISTEN connection all answer. */
  ready: boolean;
  checks: { postgres: boolean; kafka: boolean; listen: boolean };
  instanceId: string;
  shards: number[];
  /** Topics Kafka said do not exist, whose rows wait in the outbox (topic-holds.ts); informational, not a readiness check. */
  heldTopics: string[];
  /**
   * Something needs an operator although the relay works (and stays `ready`): a topic missing
   * for `missingTopicHold.alertAfterMs` or longer, its rows waiting in the outbox. `problems`
   * says what, one line each.
   */
  degraded: boolean;
  problems: string[];
}

/**
 * Publishes committed outbox rows to Kafka: claim → publish → acknowledge.
 *
 * The work happens in lanes (relay-lane.ts): each lane is one Postgres connection holding
 * a share of the 64 shards and running its own claim → publish → commit loop, so several
 * lanes overlap Kafka round trips with Postgres ones. This class owns what the lanes
 * share: the Kafka publisher, the LISTEN connection that wakes them, the counters, health
 * and the lifecycle. A broker or database outage rolls a lane's batch back and backs off
 * (rows stay pending, no attempt is spent); a row Kafka refuses for its own sake is
 * retried per `retryConfig`, then moved to the DLQ table.
 */
export class OutboxRelay {
  readonly metrics = new RelayMetrics();
  private readonly options: ResolvedRelayOptions;
  private readonly publisher: MessagePublisher;
  private readonly notifier: OutboxNotifier;
  private readonly lanes: RelayLane[];
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private publisherConnected = false;
  private readonly failover: KafkaFailover;
  private readonly holds: TopicHolds;
  /** Resolves the boot self-test when the first notification comes back. */
  private selfTestHeard: (() => void) | undefined;

  constructor(options: OutboxRelayOptions) {
    this.options = resolveRelayOptions(options);
    // resolveRelayOptions always gives one: the caller's or a kafkajs one, wrapped for tracing.
    this.publisher = this.options.publisher;
    this.notifier = this.options.notifier ?? new PgListenNotifier(this.options.connectionString, this.options.connectTimeoutMs);
    const context = {
      options: this.options,
      publisher: this.publisher,
      metrics: this.metrics,
      host: hostname(),
      failover: new KafkaFailover({
        failoverMs: this.options.kafkaFailoverMs,
        outageBackoffMs: this.options.maxOutageBackoffMs,
        publisher: this.publisher,
        metrics: this.metrics,
        logger: this.options.logger,
        ownBackendPids: () => this.lanes.flatMap((lane) => (lane.backendPid === undefined ? [] : [lane.backendPid])),
      }),
      holds: new TopicHolds(this.options.topicHoldTiming, Date.now, logOverdueHold(this.options.logger, this.options.topicHoldTiming.alertAfterMs)),
    };
    this.holds = context.holds;
    this.failover = context.failover;
    const { lanes, instanceId } = this.options;
    this.lanes = Array.from({ length: lanes }, (_, i) => new RelayLane(context, lanes === 1 ? instanceId : `${instanceId}/lane-${i}`));
  }

  get instanceId(): string {
    return this.options.instanceId;
  }

  /** Connects and starts the lanes. Fails fast (and cleans up) when Postgres or Kafka cannot be reached at boot. */
  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new Error('OutboxRelay was stopped; create a new instance'));
    this.starting ??= this.connectAndRun();
    return this.starting;
  }

  private async connectAndRun(): Promise<void> {
    const log = this.options.logger;
    const abort = new AbortController();
    this.abort = abort;
    try {
      await this.publisher.connect();
      this.publisherConnected = true;
      // All lanes announce themselves before any rebalances, so the first split already counts them all.
      for (const lane of this.lanes) await lane.connect();
      await this.notifier.start({
        onNotify: (payload) => {
          this.selfTestHeard?.();
          this.wakeLanesFor(parseShardMask(payload));
        },
        // After every (re)connect: notifications sent meanwhile are lost, so sweep now.
        onConnected: () => {
          log.info({ reconnects: this.notifier.reconnects }, 'listening for outbox notifications');
          this.wakeAll();
        },
        onError: (error) => log.warn({ err: error.message }, 'outbox listener error; reconnecting'),
      });
      await this.notifySelfTest();
    } catch (error) {
      await this.release();
      this.starting = undefined; // a later start() may try again
      throw error;
    }
    const { batchSize, pollIntervalMs, lanes } = this.options;
    const kafkajsPatch = kafkajsPatchRevision();
    log.info({ instanceId: this.instanceId, lanes, batchSize, pollIntervalMs, kafkajsPatch: kafkajsPatch ?? 'none' }, 'relay started');
    if (kafkajsPatch === undefined || kafkajsPatch < KAFKAJS_PATCH_REVISION) {
      // Still safe: a send plain kafkajs resolves without writing every partition (kafkajs
      // #1303) fails the position check and is retried; but partition errors re-send whole
      // requests (duplicates) and the relay drains several times slower.
      log.warn(
        { kafkajsPatch: kafkajsPatch ?? 'none', expected: KAFKAJS_PATCH_REVISION },
        'kafkajs lacks patches/kafkajs@2.2.4.patch: more duplicates at leader changes and a slower drain; apply the patch (docs/operators.md, the kafkajs patch)',
      );
    }
    this.loop = Promise.all(this.lanes.map((lane) => lane.run(abort.signal))).then(() => undefined);
  }

  /**
   * Stops claiming, lets the batches in flight finish (up to `shutdownGraceMs`, then rolls
   * them back), releases the shards and closes connections. Idempotent; safe before `start()`.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // A stop during start waits for the start to finish (or fail), so nothing is left half-connected.
      await this.starting?.catch(() => undefined);
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
          for (const lane of this.lanes) lane.dropConnection();
          // A lane may still wait on Kafka; disconnecting the publisher in release() ends that
          // wait, so do not let it hold the shutdown past the grace period.
          await Promise.race([this.loop, sleep(1000)]);
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
    const postgres = this.lanes.every((lane) => lane.postgresOk && lane.connected);
    const kafka = this.publisherConnected && !this.failover.handedOver && this.lanes.every((lane) => lane.kafkaOk);
    const checks = { postgres, kafka, listen: this.notifier.connected };
    return {
      live: this.loop !== undefined && this.stopping === undefined,
      ready: checks.postgres && checks.kafka && checks.listen && this.stopping === undefined,
      checks,
      instanceId: this.instanceId,
      shards: this.shards,
      heldTopics: this.heldTopics,
      ...this.problems(),
    };
  }

  /** What health() reports as needing an operator: topics held for `alertAfterMs` or longer. */
  private problems(): { degraded: boolean; problems: string[] } {
    const now = Date.now();
    const problems = this.holds
      .overdue()
      .map(
        (held) =>
          `topic ${held.topic} missing for ${Math.round((now - held.since) / 1000)} s (since ${new Date(held.since).toISOString()}): rows of ${[...held.eventTypes].join(', ')} wait in the outbox until it exists`,
      );
    return { degraded: problems.length > 0, problems };
  }

  /** Topics Kafka said do not exist and no row of which was published since: their rows wait in the outbox. */
  get heldTopics(): string[] {
    return this.holds.list().map((hold) => hold.topic);
  }

  /** Held topics missing for `missingTopicHold.alertAfterMs` or longer. */
  get overdueHeldTopics(): string[] {
    return this.holds.overdue().map((hold) => hold.topic);
  }

  /** Reconnects of the LISTEN connection since start. */
  get listenReconnects(): number {
    return this.notifier.reconnects;
  }

  /** Shards this instance publishes now (all lanes). */
  get shards(): number[] {
    return this.lanes.flatMap((lane) => lane.shards).sort((a, b) => a - b);
  }

  /** Rows may wait anywhere (a listener (re)connect, a notification without a mask): every lane sweeps. */
  private wakeAll(): void {
    for (const lane of this.lanes) lane.rowsMayWait();
  }

  /**
   * Wakes the lanes holding a shard the notification names (every lane when it names none),
   * so one commit costs one claim, not one per lane, and that claim probes only the named
   * shards. A shard in handover belongs to no lane for a moment: the lane that takes it
   * probes it at once, and the poll covers the rest.
   */
  private wakeLanesFor(mask: bigint | undefined): void {
    if (mask === undefined) {
      this.wakeAll();
      return;
    }
    const shards = shardsInMask(mask);
    for (const lane of this.lanes) lane.rowsMayWait(shards);
  }

  /** LISTEN silently never fires through PgBouncer (transaction pooling) or on a replica: say so at boot. */
  private async notifySelfTest(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const heard = await Promise.race([
      new Promise<boolean>((resolve) => (this.selfTestHeard = () => resolve(true))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3000))),
      this.lanes[0]!.notify(OUTBOX_CHANNEL).then(() => new Promise<boolean>(() => {})),
    ]);
    clearTimeout(timer);
    this.selfTestHeard = undefined;
    if (!heard) {
      this.options.logger.warn(
        { pollIntervalMs: this.options.pollIntervalMs },
        'LISTEN/NOTIFY self-test failed: no notification came back within 3 s (PgBouncer in transaction mode, or a read replica?). Relying on the fallback poll.',
      );
    }
  }

  private async release(): Promise<void> {
    await Promise.all(this.lanes.map((lane) => lane.release()));
    await this.notifier.stop();
    if (this.publisherConnected) await this.publisher.disconnect().catch(() => undefined);
    this.publisherConnected = false;
  }
}
