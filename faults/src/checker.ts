/**
 * The delivery checker: pure functions from what was written and what was delivered to the
 * figures of one scenario. No I/O here, so the definitions are unit-tested on their own
 * (checker.test.ts) and read in one place:
 *
 * - **committed**: events in `eventbus.event_log` after the run (the database is the truth;
 *   the writer's own record is cross-checked against it as `atomicity` problems).
 * - **lost**: committed, but neither delivered (ordinary events) nor in the DLQ table
 *   (poison events).
 * - **phantom**: delivered or dead-lettered, but never committed (a rolled-back write, or
 *   an id that was never written).
 * - **duplicates**: deliveries beyond the first of an event id, split into *republished*
 *   (the same event at another Kafka offset: the relay sent it twice; bounded by one relay
 *   batch per lane per fault) and *redelivered* (the same offset handled twice: the consumer crashed
 *   or its group rebalanced before the offset was committed; reported, with samples).
 * - **inversions**: per tenant, after dropping all but the first delivery of each event id,
 *   a sequence number that is not greater than the one delivered before it.
 * - **recovery**: for each fault, the time from its end until every event committed before
 *   that end had been delivered; the scenario reports the worst, and the worst per fault kind
 *   (a scenario with faults of several kinds, e.g. 9's reset and black hole, shows each).
 */

/** One transaction of the workload, as the writer saw it end. */
export interface WriteRecord {
  eventId: string;
  tenantId: string;
  seq: number;
  /** `error`: the write failed for a reason the workload did not choose; the event log decides. */
  outcome: 'committed' | 'rolled_back' | 'error';
  /** ms since the epoch when COMMIT returned (committed only). */
  committedAtMs?: number;
  poison?: 'nonretriable' | 'always';
}

/** One handler invocation recorded by a consumer worker (`faults.deliveries`). */
export interface DeliveryRecord {
  /** Insert order; per tenant it is the order the group handled the tenant's events. */
  id: number;
  eventId: string;
  tenantId: string;
  seq: number;
  worker: string;
  partition: number;
  offset: string;
  /** The consumer's attempt number (> 1: the delivery came through the group's retry topic). */
  attempt?: number;
  receivedAtMs: number;
}

/** A fault the scenario injected: from `atMs` until `endMs` (when it was repaired). */
export interface FaultRecord {
  kind: string;
  atMs: number;
  endMs: number;
  detail?: string;
}

export interface CheckInput {
  writes: WriteRecord[];
  /** Ids present in eventbus.event_log for the workload's tenants, with their tenant and seq. */
  eventLog: Array<{ eventId: string; tenantId: string; seq: number; poison?: string | null }>;
  deliveries: DeliveryRecord[];
  /** Deliveries to a control group that handles poison events like any other (scenario 7), for the latency comparison. */
  controlDeliveries?: DeliveryRecord[] | undefined;
  /** Effects applied through the inbox, one row per application. */
  effects: Array<{ eventId: string }>;
  /** Event ids in eventbus.dead_letters for the scenario's consumer group. */
  deadLettered: string[];
  faults: FaultRecord[];
  /** When the workload stopped writing; the recovery of a scenario without faults is measured from here. */
  loadEndMs: number;
  /** Republished duplicates allowed per fault (one relay batch per lane). */
  batchBound: number;
  /**
   * Republished duplicates allowed in all, instead of `batchBound` per fault: scenarios whose
   * faults are the broker's, not the project's, allow none unless a project process crashed.
   */
  republishBound?: number;
}

export interface CheckResult {
  committed: number;
  rolledBack: number;
  delivered: number;
  deadLettered: number;
  poisonCommitted: number;
  lost: string[];
  phantom: string[];
  /** The writer and the event log disagree: a write it saw commit is missing, or a rolled-back one is present. */
  atomicity: string[];
  /**
   * `bound` applies to `republished`: one relay batch per lane per fault. `redelivered` (the consumer
   * handled an offset again: uncommitted offsets after a crash or a group rebalance) is
   * reported beside it with `samples`, since its size depends on kafkajs' fetch batches.
   */
  duplicates: {
    total: number;
    republished: number;
    redelivered: number;
    bound: number;
    events: string[];
    samples: Array<{ eventId: string; deliveries: Array<Pick<DeliveryRecord, 'worker' | 'partition' | 'offset' | 'attempt' | 'receivedAtMs'>> }>;
  };
  inversions: string[];
  /** Delivered events whose inbox effect was applied a number of times other than once. */
  effectsNotOnce: string[];
  recoveryMs: number;
  /** The worst recovery per fault kind (empty without faults). */
  recoveryByKindMs: Record<string, number>;
  /** Commit → first delivery, ordinary events. */
  latencyMs: { p50: number; p99: number; max: number };
  /** The same for tenants that wrote no poison event (scenario 7 compares it with the baseline). */
  cleanTenantLatencyMs: { p50: number; p99: number };
  /** The same tenants' latency in the control group, over the same events at the same time ("without poison"). */
  controlCleanTenantLatencyMs?: { p50: number; p99: number };
  faults: number;
}

export function checkDelivery(input: CheckInput): CheckResult {
  const logById = new Map(input.eventLog.map((e) => [e.eventId, e]));
  const poisonIds = new Set(input.eventLog.filter((e) => e.poison).map((e) => e.eventId));
  const rolledBack = input.writes.filter((w) => w.outcome === 'rolled_back');
  const atomicity = [
    ...input.writes.filter((w) => w.outcome === 'committed' && !logById.has(w.eventId)).map((w) => `${w.eventId} committed but missing from event_log`),
    ...rolledBack.filter((w) => logById.has(w.eventId)).map((w) => `${w.eventId} rolled back but present in event_log`),
  ];
  const { ordered, first, offsets } = indexDeliveries(input.deliveries);
  const deadLettered = new Set(input.deadLettered);

  const lost: string[] = [];
  for (const e of input.eventLog) {
    const reached = poisonIds.has(e.eventId) ? deadLettered.has(e.eventId) : first.has(e.eventId);
    if (!reached) lost.push(e.eventId);
  }
  const phantom = [...new Set([...first.keys(), ...deadLettered].filter((id) => !logById.has(id)))];
  const duplicates = countDuplicates(offsets);

  const effectCount = new Map<string, number>();
  for (const e of input.effects) effectCount.set(e.eventId, (effectCount.get(e.eventId) ?? 0) + 1);
  const effectsNotOnce = [...first.keys()].filter((id) => effectCount.get(id) !== 1).map((id) => `${id} applied ${effectCount.get(id) ?? 0} times`);

  const timing = measureTiming(input, poisonIds, first);
  return {
    committed: input.eventLog.length,
    rolledBack: rolledBack.length,
    delivered: first.size,
    deadLettered: input.eventLog.filter((e) => poisonIds.has(e.eventId) && deadLettered.has(e.eventId)).length,
    poisonCommitted: poisonIds.size,
    lost,
    phantom,
    atomicity,
    duplicates: {
      total: duplicates.republished + duplicates.redelivered,
      republished: duplicates.republished,
      redelivered: duplicates.redelivered,
      bound: input.republishBound ?? Math.max(1, input.faults.length) * input.batchBound,
      events: duplicates.events,
      samples: duplicates.events.slice(0, 5).map((eventId) => ({
        eventId,
        deliveries: ordered
          .filter((d) => d.eventId === eventId)
          .map(({ worker, partition, offset, attempt, receivedAtMs }) => ({ worker, partition, offset, attempt, receivedAtMs })),
      })),
    },
    inversions: perTenantInversions(first),
    effectsNotOnce,
    ...timing,
    faults: input.faults.length,
  };
}

/** The deliveries in handling order, each event's first delivery, and how often each event was handled at each Kafka offset. */
function indexDeliveries(deliveries: readonly DeliveryRecord[]) {
  const ordered = [...deliveries].sort((a, b) => a.id - b.id);
  const first = new Map<string, DeliveryRecord>();
  const offsets = new Map<string, Map<string, number>>();
  for (const d of ordered) {
    if (!first.has(d.eventId)) first.set(d.eventId, d);
    let byOffset = offsets.get(d.eventId);
    if (!byOffset) offsets.set(d.eventId, (byOffset = new Map()));
    const at = `${d.partition}/${d.offset}`;
    byOffset.set(at, (byOffset.get(at) ?? 0) + 1);
  }
  return { ordered, first, offsets };
}

/** Republished: the same event at a second Kafka offset (the relay sent it again). Redelivered: handled again at the same offset (the consumer's commit had not passed it). */
function countDuplicates(offsets: ReadonlyMap<string, ReadonlyMap<string, number>>) {
  let republished = 0;
  let redelivered = 0;
  const events: string[] = [];
  for (const [eventId, byOffset] of offsets) {
    const extraOffsets = byOffset.size - 1;
    const extraHandling = [...byOffset.values()].reduce((s, n) => s + n - 1, 0);
    republished += extraOffsets;
    redelivered += extraHandling;
    if (extraOffsets + extraHandling > 0) events.push(eventId);
  }
  return { republished, redelivered, events };
}

/** A tenant's event first delivered after one it wrote later. */
function perTenantInversions(first: ReadonlyMap<string, DeliveryRecord>): string[] {
  const inversions: string[] = [];
  const lastByTenant = new Map<string, DeliveryRecord>();
  for (const d of first.values()) {
    const last = lastByTenant.get(d.tenantId);
    if (last && d.seq <= last.seq) inversions.push(`${d.tenantId}: seq ${d.seq} (${d.eventId}) delivered after seq ${last.seq} (${last.eventId})`);
    lastByTenant.set(d.tenantId, d);
  }
  return inversions;
}

/** Commit → first delivery (all, tenants without poison, and the control group's), and the recovery after each fault. */
function measureTiming(
  input: CheckInput,
  poisonIds: ReadonlySet<string>,
  first: ReadonlyMap<string, DeliveryRecord>,
): Pick<CheckResult, 'recoveryMs' | 'recoveryByKindMs' | 'latencyMs' | 'cleanTenantLatencyMs' | 'controlCleanTenantLatencyMs'> {
  const committedAt = new Map(input.writes.filter((w) => w.committedAtMs !== undefined).map((w) => [w.eventId, w.committedAtMs!]));
  const ordinary = input.eventLog.filter((e) => !poisonIds.has(e.eventId) && first.has(e.eventId) && committedAt.has(e.eventId));
  const latency = (events: typeof ordinary) => events.map((e) => Math.max(0, first.get(e.eventId)!.receivedAtMs - committedAt.get(e.eventId)!));
  const poisonTenants = new Set(input.eventLog.filter((e) => e.poison).map((e) => e.tenantId));
  const all = latency(ordinary);
  const clean = latency(ordinary.filter((e) => !poisonTenants.has(e.tenantId)));
  let control: number[] | undefined;
  if (input.controlDeliveries) {
    const firstControl = new Map<string, number>();
    for (const d of input.controlDeliveries) firstControl.set(d.eventId, Math.min(firstControl.get(d.eventId) ?? Infinity, d.receivedAtMs));
    control = input.eventLog
      .filter((e) => !poisonTenants.has(e.tenantId) && firstControl.has(e.eventId) && committedAt.has(e.eventId))
      .map((e) => Math.max(0, firstControl.get(e.eventId)! - committedAt.get(e.eventId)!));
  }

  // Recovery: per repair time, how long until everything committed before it was delivered.
  const recoveryAfter = (repairedAt: number) => {
    let latest = repairedAt;
    for (const e of ordinary) {
      if (committedAt.get(e.eventId)! <= repairedAt) latest = Math.max(latest, first.get(e.eventId)!.receivedAtMs);
    }
    return latest - repairedAt;
  };
  let recoveryMs = input.faults.length > 0 ? 0 : recoveryAfter(input.loadEndMs);
  const recoveryByKindMs: Record<string, number> = {};
  for (const fault of input.faults) {
    const ms = recoveryAfter(fault.endMs);
    recoveryMs = Math.max(recoveryMs, ms);
    recoveryByKindMs[fault.kind] = Math.max(recoveryByKindMs[fault.kind] ?? 0, ms);
  }
  return {
    recoveryMs,
    recoveryByKindMs,
    latencyMs: { p50: percentile(all, 50), p99: percentile(all, 99), max: all.length ? Math.max(...all) : 0 },
    cleanTenantLatencyMs: { p50: percentile(clean, 50), p99: percentile(clean, 99) },
    ...(control ? { controlCleanTenantLatencyMs: { p50: percentile(control, 50), p99: percentile(control, 99) } } : {}),
  };
}

/** Nearest-rank percentile; 0 for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The invariants a scenario must hold; each problem names the event ids involved. */
/**
 * How much the tenants that wrote no poison may be slowed by those that did (p99 commit → first
 * delivery, in the group that fails on poison against a control group reading the same events
 * at the same time without failing): issue #16's bound.
 */
export const ISOLATION_P99_RATIO = 1.5;

export function violations(r: CheckResult, isolationP99Ratio?: number): string[] {
  const problems: string[] = [];
  const list = (ids: string[]) => ids.slice(0, 20).join(', ') + (ids.length > 20 ? `, … (${ids.length} in all)` : '');
  if (r.lost.length) problems.push(`lost ${r.lost.length}: ${list(r.lost)}`);
  if (r.phantom.length) problems.push(`phantom ${r.phantom.length}: ${list(r.phantom)}`);
  if (r.atomicity.length) problems.push(`atomicity ${r.atomicity.length}: ${list(r.atomicity)}`);
  if (r.inversions.length) problems.push(`inversions ${r.inversions.length}: ${list(r.inversions)}`);
  if (r.effectsNotOnce.length) problems.push(`inbox effects not once ${r.effectsNotOnce.length}: ${list(r.effectsNotOnce)}`);
  if (r.duplicates.republished > r.duplicates.bound) {
    problems.push(`republished duplicates ${r.duplicates.republished} above the bound ${r.duplicates.bound}: ${list(r.duplicates.events)}`);
  }
  const control = r.controlCleanTenantLatencyMs;
  if (control && isolationP99Ratio !== undefined && r.cleanTenantLatencyMs.p99 > isolationP99Ratio * control.p99) {
    problems.push(
      `failing tenants slowed the others: p99 ${Math.round(r.cleanTenantLatencyMs.p99)} ms for the tenants that wrote no poison, ` +
        `above ${isolationP99Ratio}× the ${Math.round(control.p99)} ms of the control group reading the same events`,
    );
  }
  return problems;
}
