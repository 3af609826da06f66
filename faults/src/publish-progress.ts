import type pg from 'pg';
import type { FaultRecord } from './checker.js';

/** One look at the outbox: how many events the relays have published so far, and how many wait. */
export interface ProgressSample {
  atMs: number;
  /** Events in event_log minus rows in the outbox: rows leave the outbox only when Kafka acknowledged their batch. */
  published: number;
  pending: number;
}

/** A time during which events waited in the outbox and none was published. */
export interface Stall {
  fromMs: number;
  toMs: number;
  ms: number;
}

/** The longest stall around one fault, relative to the fault's start. */
export interface FaultStall {
  kind: string;
  detail?: string;
  stallMs: number;
  /** When the stall began, ms after the fault began (negative: before). */
  startsAfterFaultMs: number;
}

/**
 * Stalls in publishing: from the last sample that showed progress (or an empty outbox) to the
 * next sample that shows progress, while events were pending. Resolution is the sampling
 * interval. A stall still open at the last sample ends there.
 */
export function stalls(samples: ProgressSample[]): Stall[] {
  const found: Stall[] = [];
  let since: number | undefined;
  let last: ProgressSample | undefined;
  for (const s of samples) {
    if (last && s.published > last.published) {
      if (since !== undefined) found.push({ fromMs: since, toMs: s.atMs, ms: s.atMs - since });
      since = s.pending > 0 ? s.atMs : undefined;
    } else if (s.pending === 0) {
      since = undefined;
    } else if (since === undefined) {
      since = last && last.pending > 0 ? last.atMs : s.atMs;
    }
    last = s;
  }
  if (since !== undefined && last && last.atMs > since) found.push({ fromMs: since, toMs: last.atMs, ms: last.atMs - since });
  return found;
}

/** The longest stall overall, and the longest overlapping each fault (from its start until it was repaired). */
export function summarizeStalls(samples: ProgressSample[], faults: FaultRecord[]): { maxMs: number; byFault: FaultStall[] } {
  const all = stalls(samples);
  return {
    maxMs: all.reduce((m, s) => Math.max(m, s.ms), 0),
    byFault: faults.map((f) => {
      const overlapping = all.filter((s) => s.toMs >= f.atMs && s.fromMs <= f.endMs);
      const worst = overlapping.reduce<Stall | undefined>((w, s) => (!w || s.ms > w.ms ? s : w), undefined);
      return { kind: f.kind, ...(f.detail ? { detail: f.detail } : {}), stallMs: worst?.ms ?? 0, startsAfterFaultMs: worst ? worst.fromMs - f.atMs : 0 };
    }),
  };
}

/**
 * Samples publishing progress from Postgres every `intervalMs` while a scenario runs: the
 * relays' view (a row is deleted in the transaction that commits after Kafka's ack), so a
 * stall here is what an operator would see as outbox lag, whatever the cause.
 */
export class PublishProgressMonitor {
  readonly samples: ProgressSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async sample(): Promise<void> {
    // A slow query on a loaded machine must not pile up samples behind it.
    if (this.busy) return;
    this.busy = true;
    try {
      // One statement, one snapshot: both counts describe the same moment.
      const { rows } = await this.pool.query(
        `SELECT (SELECT count(*) FROM eventbus.event_log)::int - (SELECT count(*) FROM eventbus.outbox)::int AS published,
                (SELECT count(*) FROM eventbus.outbox)::int AS pending`,
      );
      this.samples.push({ atMs: Date.now(), published: Number(rows[0].published), pending: Number(rows[0].pending) });
    } catch {
      // A failed sample is a missing sample: the stall around it is measured between the samples that worked.
    } finally {
      this.busy = false;
    }
  }
}
