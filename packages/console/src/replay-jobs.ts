import type pg from 'pg';
import { errorMessage, invalidConfig, isEventBusError, TopicRouter, type TopicRoutingOptions } from '@eventbus/core';
import type { MessagePublisher } from '@eventbus/kafka';
import { republishEvents, type ReplayFilter, type ReplayTarget } from '@eventbus/replay';
import { redactSecrets } from './security.js';

/** Where a replay from the console sends events: one group's retry topic, or the event topics every group reads. */
export type ConsoleReplayTarget = { kind: 'group'; groupId: string } | { kind: 'event-topics' };

/** A replay the console started, as the page follows it. */
export interface ReplayJob {
  id: string;
  replayId: string | null;
  state: 'running' | 'done' | 'stopped' | 'failed';
  tenantId: string;
  eventTypes: string[];
  target: ConsoleReplayTarget;
  ratePerSecond: number;
  sent: number;
  total: number | null;
  startedAt: string;
  elapsedMs: number;
  error: string | null;
  /** Set when the replay stopped early: `eventbus replay ... --resume <token>` continues it. */
  resumeToken: string | null;
}

/** Jobs kept for the page (finished ones too, newest first), at most this many. */
const KEPT_JOBS = 20;

/**
 * Replays started from the page, each through @eventbus/replay's republishEvents (the same
 * function as `eventbus replay`), in the background with its own AbortController; the page
 * polls their progress.
 */
export class ReplayJobs {
  private readonly jobs: Array<{ job: ReplayJob; abort: AbortController; done: Promise<void> }> = [];
  private nextId = 1;

  constructor(
    private readonly pool: pg.Pool,
    private readonly publisher: MessagePublisher | undefined,
    private readonly routing: TopicRoutingOptions,
  ) {}

  /** Counts the events the filter matches now, sending nothing. */
  async dryRun(filter: ReplayFilter, target: ConsoleReplayTarget): Promise<number> {
    const result = await republishEvents(this.pool, { filter, target: this.target(target), dryRun: true });
    return result.total;
  }

  start(filter: ReplayFilter, target: ConsoleReplayTarget, ratePerSecond: number): ReplayJob {
    const publisher = this.publisher;
    if (!publisher) throw invalidConfig('KAFKA_BROKERS', 'brokers to replay to (start the console with KAFKA_BROKERS or --brokers)', 'nothing');
    const resolvedTarget = this.target(target);
    const abort = new AbortController();
    const started = Date.now();
    const job: ReplayJob = {
      id: String(this.nextId++),
      replayId: null,
      state: 'running',
      tenantId: filter.tenantId,
      eventTypes: [...(filter.eventTypes ?? [])],
      target,
      ratePerSecond,
      sent: 0,
      total: null,
      startedAt: new Date(started).toISOString(),
      elapsedMs: 0,
      error: null,
      resumeToken: null,
    };
    const done = republishEvents(this.pool, {
      filter,
      target: resolvedTarget,
      publisher,
      ratePerSecond,
      signal: abort.signal,
      onProgress: (p) => Object.assign(job, { sent: p.sent, total: p.total, elapsedMs: p.elapsedMs }),
    }).then(
      (result) =>
        void Object.assign(job, {
          replayId: result.replayId,
          state: result.interrupted ? 'stopped' : 'done',
          sent: result.sent,
          total: result.total,
          elapsedMs: result.elapsedMs,
          resumeToken: result.interrupted ? result.resumeToken : null,
        }),
      (error: unknown) =>
        void Object.assign(job, {
          state: 'failed',
          elapsedMs: Date.now() - started,
          error: redactSecrets(errorMessage(error)),
          resumeToken: isEventBusError(error, 'PUBLISH_FAILED') ? ((error.details.resumeToken as string | null) ?? null) : null,
        }),
    );
    this.jobs.unshift({ job, abort, done });
    for (const old of this.jobs.splice(KEPT_JOBS)) old.abort.abort();
    return job;
  }

  list(): ReplayJob[] {
    return this.jobs.map((j) => ({ ...j.job }));
  }

  /** Stops a running job after its chunk in flight; false when no such job. */
  stop(id: string): boolean {
    const entry = this.jobs.find((j) => j.job.id === id);
    entry?.abort.abort();
    return entry !== undefined;
  }

  /** Stops every running replay and waits for each to settle. Idempotent. */
  async stopAll(): Promise<void> {
    for (const j of this.jobs) j.abort.abort();
    await Promise.all(this.jobs.map((j) => j.done));
  }

  private target(target: ConsoleReplayTarget): ReplayTarget {
    const router = new TopicRouter(this.routing);
    return target.kind === 'group' ? { kind: 'group', groupId: target.groupId, router } : { kind: 'event-topics', router };
  }
}
