import type pg from 'pg';
import { errorMessage } from '@eventbus/core';
import { deadLetterStatusCounts } from '@eventbus/dead-letters';
import type { GroupLag } from '@eventbus/kafka';
import { eventFlow, outboxBacklog, outboxShards, type ShardStatus } from '@eventbus/outbox';
import { relayInstances, type RelayInstanceRow } from '@eventbus/relay';
import type { LagSource } from './options.js';
import { redactSecrets } from './security.js';

/** What the pipeline panel shows at one moment. */
export interface PipelineSnapshot {
  at: string;
  writtenPerSecond: number;
  publishedPerSecond: number;
  /** Sum over the shown groups of committed offsets per second; null without Kafka or before two samples. */
  consumedPerSecond: number | null;
  backlog: { pending: number; failing: number; oldestAgeSeconds: number };
  shards: ShardStatus[];
  relayInstances: RelayInstanceRow[];
  groups: GroupLag[];
  /** Why the lag could not be read (Kafka not configured, unreachable), or null. */
  lagError: string | null;
  deadLettersPending: number;
}

/**
 * Written and published per second come from the EventLog over this window (eventFlow):
 * short enough for the chart to follow a change within seconds, long enough to average the
 * relay's batches.
 */
export const FLOW_WINDOW_SECONDS = 5;
/** Consumed per second: committed offsets over at least this long (consumers commit once a second). */
const CONSUMED_WINDOW_MS = 5000;
/** Snapshots younger than this are shared: several open pages cost one set of queries. */
const CACHE_MS = 800;

/**
 * Reads the pipeline's state through the packages that own each query: the outbox, shard and
 * event-flow statements (@eventbus/outbox), the relay instances (@eventbus/relay), the
 * dead-letter counts, the consumer-group lag reader.
 */
export class PipelineMonitor {
  private cached: { at: number; snapshot: Promise<PipelineSnapshot> } | undefined;
  private readonly committedSamples: Array<{ at: number; committed: number }> = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly lagSource: LagSource | undefined,
    private readonly groups: readonly string[] | undefined,
  ) {}

  snapshot(): Promise<PipelineSnapshot> {
    const now = Date.now();
    if (this.cached && now - this.cached.at < CACHE_MS) return this.cached.snapshot;
    const snapshot = this.read(now);
    this.cached = { at: now, snapshot };
    // A failed read is not cached: the next poll tries again.
    snapshot.catch(() => {
      if (this.cached?.snapshot === snapshot) this.cached = undefined;
    });
    return snapshot;
  }

  private async read(now: number): Promise<PipelineSnapshot> {
    const [flow, backlog, shards, instances, deadLetters, lag] = await Promise.all([
      eventFlow(this.pool, FLOW_WINDOW_SECONDS),
      outboxBacklog(this.pool),
      outboxShards(this.pool),
      relayInstances(this.pool),
      deadLetterStatusCounts(this.pool, FLOW_WINDOW_SECONDS),
      this.readLag(),
    ]);
    return {
      at: new Date(now).toISOString(),
      writtenPerSecond: round(flow.written / FLOW_WINDOW_SECONDS),
      publishedPerSecond: round(flow.published / FLOW_WINDOW_SECONDS),
      consumedPerSecond: lag.groups ? this.consumedPerSecond(now, lag.groups) : null,
      backlog,
      shards,
      relayInstances: instances,
      groups: lag.groups ?? [],
      lagError: lag.error,
      deadLettersPending: deadLetters.reduce((sum, d) => sum + d.pending, 0),
    };
  }

  private async readLag(): Promise<{ groups: GroupLag[] | null; error: string | null }> {
    if (!this.lagSource) return { groups: null, error: 'Kafka is not configured (set KAFKA_BROKERS or --brokers)' };
    try {
      return { groups: await this.lagSource.lag(this.groups), error: null };
    } catch (error) {
      return { groups: null, error: redactSecrets(`cannot read consumer-group lag: ${errorMessage(error)}`) };
    }
  }

  /** Committed offsets gained per second since the newest sample at least CONSUMED_WINDOW_MS old. */
  private consumedPerSecond(now: number, groups: GroupLag[]): number | null {
    const committed = groups.reduce((sum, g) => sum + g.committedTotal, 0);
    const samples = this.committedSamples;
    samples.push({ at: now, committed });
    while (samples.length > 2 && now - samples[1]!.at >= CONSUMED_WINDOW_MS) samples.shift();
    const base = samples[0]!;
    if (base.at === now) return null;
    // A group that appeared or was deleted changes the sum by its whole offset: not a rate.
    return round(Math.max(0, committed - base.committed) / ((now - base.at) / 1000));
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
