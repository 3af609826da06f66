import type pg from 'pg';
import { errorMessage, reconnectDelayMs, sleep, type Logger } from '@eventbus/core';
import type { MessagePublisher } from '@eventbus/kafka';
import type { RelayMetrics } from './metrics.js';
import { countOtherParticipants } from './sql/shard-locks.js';

/** What `KafkaFailover` needs of its relay. */
export interface KafkaFailoverOptions {
  /** 0 = never hand over. */
  failoverMs: number;
  outageBackoffMs: number;
  publisher: MessagePublisher;
  metrics: RelayMetrics;
  logger: Logger;
  /** Backend pids of this instance's claim connections: they share its Kafka client, so they are not "another instance". */
  ownBackendPids(): number[];
}

/**
 * The relay instance's view of its Kafka client, shared by its lanes (which share the
 * client): how long publishes have been failing, and whether the instance has handed its
 * shards to the other instances because of it.
 *
 * An instance that reaches Postgres but not Kafka (a broken route or DNS on its host,
 * expired credentials) is not dead: it keeps its shard locks, and its tenants would wait for
 * its Kafka to come back. After `failoverMs` of failing publishes, and only while another
 * instance is live, the instance hands over: every lane releases its shards and its presence
 * lock (relay-lane.ts), so the others take the shards at their next rebalance, and this class
 * probes Kafka until it answers; then the lanes count in the split again.
 *
 * Decided once for the instance, not per lane: a lane handing over alone would see its
 * siblings, on the same broken client, take the shards it released.
 */
export class KafkaFailover {
  private failingSince: number | undefined;
  private lastFailureAt = 0;
  private recovery: Promise<void> | undefined;

  constructor(private readonly options: KafkaFailoverOptions) {}

  /** True from the handover until Kafka answers a probe again. */
  get handedOver(): boolean {
    return this.recovery !== undefined;
  }

  /** A publish of any lane was acknowledged: the shared client works. */
  succeeded(): void {
    this.failingSince = undefined;
  }

  /**
   * A publish that started at `startedAt` failed for want of Kafka. Failures form one run
   * while each follows the last within `failoverMs + outageBackoffMs` (a lane retries at
   * least that often while it has rows); an older failure starts a new run, so one blip
   * hours ago does not count as hours of failing.
   */
  failed(startedAt: number): void {
    const now = Date.now();
    if (this.failingSince !== undefined && now - this.lastFailureAt > this.options.failoverMs + this.options.outageBackoffMs) this.failingSince = undefined;
    this.failingSince ??= startedAt;
    this.lastFailureAt = now;
  }

  /**
   * Hands the instance over when publishes have failed for `failoverMs` and another instance
   * is live (counted in `pg_locks` through `client`, this instance's connections excluded);
   * returns whether the instance is handed over now. The probing runs until Kafka answers or
   * `signal` aborts.
   */
  async handOverIfDue(client: pg.ClientBase, signal: AbortSignal): Promise<boolean> {
    const { failoverMs, publisher, logger, metrics } = this.options;
    if (this.recovery) return true;
    if (failoverMs === 0 || !publisher.probe || this.failingSince === undefined) return false;
    const failingForMs = Date.now() - this.failingSince;
    if (failingForMs < failoverMs) return false;
    const others = await countOtherParticipants(client, this.options.ownBackendPids());
    if (this.recovery) return true; // another lane decided while we counted
    if (others === 0) return false; // nobody to hand over to: keep the shards
    metrics.kafkaFailovers++;
    logger.warn(
      { failingForMs, otherLanes: others },
      'Kafka unreachable from this instance: handing its shards to the other instances until Kafka answers again',
    );
    this.recovery = this.probeUntilKafkaAnswers(signal).finally(() => {
      this.recovery = undefined;
      this.failingSince = undefined;
    });
    return true;
  }

  /** Resolves when the handover ends (Kafka answered, or the relay stops). */
  ended(): Promise<void> {
    return this.recovery ?? Promise.resolve();
  }

  private async probeUntilKafkaAnswers(signal: AbortSignal): Promise<void> {
    const { publisher, outageBackoffMs, logger } = this.options;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await abortable(publisher.probe!(), signal);
        if (signal.aborted) return;
        logger.info({ probes: attempt }, 'Kafka answers again: the lanes rejoin the shard split');
        return;
      } catch (error) {
        // Why Kafka still does not answer (refused, TLS, a timeout): the first probe and then every 10th, not every one.
        if (attempt === 1 || attempt % 10 === 0)
          logger.warn({ probes: attempt, err: errorMessage(error) }, 'Kafka probe failed; the shards stay with the other instances');
        await sleep(reconnectDelayMs(attempt, { initialMs: 250, maxMs: Math.min(outageBackoffMs, 64_000) }), signal);
      }
    }
  }
}

/** `promise`, or an early end when `signal` aborts (the probe goes on in the background; its result is ignored). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
