import type pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { EventWriter } from '@eventbus/producer';
import type { WriteRecord } from './checker.js';

/** The shape of the load a scenario writes. */
export interface WorkloadOptions {
  /** At least 50; volumes are uneven (Zipf-like weights: the busiest tenant writes ~20× the quietest). */
  tenants: number;
  /** Concurrent writers; each owns a fixed set of tenants and writes them sequentially, so per-tenant order is defined. */
  writers: number;
  /** Target transactions per second over all writers (each writes 1 to eventsPerTransaction events). */
  ratePerSecond: number;
  durationMs: number;
  /** Share of transactions rolled back on purpose after writing their event. */
  rollbackShare: number;
  /** Share of transactions held open (holdMs) while the other writers' later transactions commit. */
  holdShare: number;
  holdMs: [number, number];
  /** Events per transaction: 1 to this many, same tenant, consecutive seqs (`writeEventsWithOutbox`). Default 1. */
  eventsPerTransaction?: number;
  /** Poison events: `tenants` tenants write a poison event in `share` of their transactions. */
  poison?: { tenants: number; share: number };
  /**
   * One more tenant, `poison-flood`, writing only events that fail on every attempt, at
   * `eventsPerSecond` (in transactions of `eventsPerTransaction`): the load that shows whether a
   * failing tenant slows the others down.
   */
  poisonFlood?: { eventsPerSecond: number; eventsPerTransaction: number };
}

/** The tenant of `poisonFlood`. */
export const POISON_FLOOD_TENANT = 'poison-flood';

class RollbackOnPurpose extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** The workload's tenant names and their weights. */
export function tenantsOf(count: number): Array<{ tenantId: string; weight: number }> {
  return Array.from({ length: count }, (_, i) => ({ tenantId: `t-${String(i).padStart(3, '0')}`, weight: 1 / (i + 1) ** 0.8 }));
}

/**
 * Writes the scenario's known workload through the producer library, each event in its own
 * Drizzle transaction (`EventWriter(tx).writeEventWithOutbox`), and records how every
 * transaction ended. Event keys are `{tenant}-{seq}`; the payload carries `seq` (and the
 * poison marker), which is how consumers report what they received.
 */
export class Workload {
  readonly writes: WriteRecord[] = [];
  private readonly seqs = new Map<string, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: WorkloadOptions,
  ) {}

  async run(): Promise<void> {
    const { writers, ratePerSecond, durationMs } = this.options;
    const tenants = tenantsOf(this.options.tenants);
    const total = tenants.reduce((s, t) => s + t.weight, 0);
    const poisonTenants = new Set(tenants.slice(0, this.options.poison?.tenants ?? 0).map((t) => t.tenantId));
    const started = Date.now();
    const flood = this.options.poisonFlood;
    await Promise.all([
      ...(flood ? [this.flood(flood, started)] : []),
      ...Array.from({ length: writers }, async (_, w) => {
        const mine = tenants.filter((_, i) => i % writers === w);
        const weight = mine.reduce((s, t) => s + t.weight, 0);
        const intervalMs = 1000 / (ratePerSecond * (weight / total));
        for (let n = 0; ; n++) {
          const due = started + n * intervalMs;
          // Wall-clock bound: on a loaded machine the writers fall behind rather than run long.
          if (due - started >= durationMs || Date.now() - started >= durationMs) break;
          await sleep(due - Date.now());
          const tenant = pick(mine, weight);
          const poison =
            poisonTenants.has(tenant.tenantId) && Math.random() < this.options.poison!.share ? (Math.random() < 0.5 ? 'nonretriable' : 'always') : undefined;
          await this.writeOne(tenant.tenantId, {
            events: 1 + Math.floor(Math.random() * (this.options.eventsPerTransaction ?? 1)),
            rollback: Math.random() < this.options.rollbackShare,
            holdMs: Math.random() < this.options.holdShare ? randomBetween(...this.options.holdMs) : 0,
            ...(poison ? { poison } : {}),
          });
        }
      }),
    ]);
  }

  /** The poisonFlood tenant's transactions, each of events that all fail on every attempt, until the load ends. */
  private async flood(flood: NonNullable<WorkloadOptions['poisonFlood']>, started: number): Promise<void> {
    const intervalMs = (1000 * flood.eventsPerTransaction) / flood.eventsPerSecond;
    for (let n = 0; ; n++) {
      const due = started + n * intervalMs;
      if (due - started >= this.options.durationMs || Date.now() - started >= this.options.durationMs) break;
      await sleep(due - Date.now());
      await this.writeOne(POISON_FLOOD_TENANT, { events: flood.eventsPerTransaction, poison: 'always', poisonAll: true });
    }
  }

  /**
   * One transaction with `events` events of one tenant (default 1); `holdMs` keeps it open
   * after the write, `rollback` throws at the end. Returns the first event's record.
   */
  async writeOne(
    tenantId: string,
    how: { events?: number; rollback?: boolean; holdMs?: number; poison?: 'nonretriable' | 'always'; poisonAll?: boolean } = {},
  ): Promise<WriteRecord> {
    const records: WriteRecord[] = Array.from({ length: how.events ?? 1 }, (_, i) => {
      const seq = (this.seqs.get(tenantId) ?? 0) + 1;
      this.seqs.set(tenantId, seq);
      // A poison marker goes on the transaction's last event only, or (poisonAll) on every one.
      const poison = how.poisonAll || i === (how.events ?? 1) - 1 ? how.poison : undefined;
      return { eventId: '', tenantId, seq, outcome: 'error' as const, ...(poison ? { poison } : {}) };
    });
    let outcome: WriteRecord['outcome'] = 'error';
    let committedAtMs: number | undefined;
    try {
      await drizzle(this.pool).transaction(async (tx) => {
        const results = await new EventWriter(tx).writeEventsWithOutbox(
          records.map((r) => ({
            tenantId,
            eventKey: `${tenantId}-${r.seq}`,
            eventType: 'order.placed',
            payload: { seq: r.seq, ...(r.poison ? { poison: r.poison } : {}) },
          })),
        );
        for (const [i, result] of results.entries()) records[i]!.eventId = result.eventLogId;
        if (how.holdMs) await sleep(how.holdMs);
        if (how.rollback) throw new RollbackOnPurpose();
      });
      outcome = 'committed';
      committedAtMs = Date.now();
    } catch (error) {
      outcome = error instanceof RollbackOnPurpose ? 'rolled_back' : 'error';
    }
    for (const record of records) {
      record.outcome = outcome;
      if (committedAtMs !== undefined) record.committedAtMs = committedAtMs;
      if (record.eventId) this.writes.push(record);
    }
    return records[0]!;
  }
}

function pick<T extends { weight: number }>(items: T[], total: number): T {
  let r = Math.random() * total;
  for (const item of items) {
    r -= item.weight;
    if (r <= 0) return item;
  }
  return items[items.length - 1]!;
}

function randomBetween(min: number, max: number): number {
  return min + Math.random() * (max - min);
}
