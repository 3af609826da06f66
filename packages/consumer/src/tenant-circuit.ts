import { EventBusError, shellQuote } from '@eventbus/core';

/** Settings of the per-tenant circuit breaker (`EventConsumerOptions.tenantCircuitBreaker`). */
export interface TenantCircuitOptions {
  /** Counted failures in a row, for one tenant and one subscription, that open its circuit. Default 100. */
  failureThreshold: number;
  /** How long the counted failures must have lasted before the circuit opens: a shorter spell is left to the retries. Default 2000 ms. */
  minStreakMs: number;
  /** How long a circuit stays open before one attempt probes it again. Default 10000 ms. */
  openMs: number;
}

export const DEFAULT_TENANT_CIRCUIT: Readonly<TenantCircuitOptions> = Object.freeze({ failureThreshold: 100, minStreakMs: 2000, openMs: 10_000 });

/**
 * The clocks of the breaker: `monotonicNow` (performance.now()) is the one the callers pass as
 * `now` and every period is measured on; `wallNow` (Date.now()) only dates an open period for
 * logs and dead letters. On the wall clock an NTP step, or an operator setting the time, would
 * stretch or cut short an open period, a probe lease or a streak's duration.
 */
export interface CircuitClock {
  monotonicNow(): number;
  wallNow(): number;
}

const SYSTEM_CLOCK: CircuitClock = { monotonicNow: () => performance.now(), wallNow: () => Date.now() };

/** A tenant's failures in a row on one subscription; deleted at its next success. Times are monotonic (CircuitClock). */
interface Streak {
  /** Failures counted towards opening: those with another tenant's success since the tenant's previous failure. */
  failures: number;
  /** When the first counted failure happened. */
  countedSince: number | undefined;
  /** The subscription's success count at the tenant's last failure. */
  successesAtLastFailure: number;
  lastFailureAt: number;
  lastError: string;
  /** Once opened: the end of the open period; failures before it do not extend it. */
  openUntil: number | undefined;
  /** After openUntil: while one attempt probes, until this time (its handler timeout), the others are still dead-lettered. */
  probeUntil: number | undefined;
  /** The circuit opened during this streak: the next failure after openUntil opens it again at once. */
  opened: boolean;
  /** The error of the current open (or probing) period, built once for all its dead letters. */
  openError: EventBusError | undefined;
}

/** One subscription's streaks, and how many attempts of any tenant succeeded on it. */
interface SubscriptionCircuits {
  successes: number;
  streaks: Map<string, Streak>;
}

/** What `failed` and `succeeded` report, so the caller logs the change once; `openUntil` on the wall clock (ms since the epoch), for the log. */
export type CircuitChange = { change: 'opened'; failures: number; openUntil: number; lastError: string; reopened: boolean } | { change: 'closed' } | undefined;

/**
 * Bounds memory when many tenants fail at once: the oldest streak is forgotten (its circuit, if
 * open, closes), which costs only retries, never an event.
 */
const MAX_STREAKS_PER_SUBSCRIPTION = 10_000;
/** The oldest streak whose circuit never opened (the oldest of all if every one did): forgetting it costs the least. */
function oldestClosed(streaks: Map<string, Streak>): string {
  for (const [tenantId, streak] of streaks) if (!streak.opened) return tenantId;
  return streaks.keys().next().value!;
}
/** The last error kept per streak, for the dead letters' message (which the DLQ caps at 2 KiB anyway). */
const MAX_ERROR_CHARS = 500;
/**
 * A streak that never opened and had no failure for this long starts again: a tenant that failed
 * a few times an hour ago and fails now has not been failing since then.
 */
const STALE_STREAK_MS = 60_000;

/**
 * The per-tenant circuit breaker of one consumer process. A tenant whose every attempt on a
 * subscription fails costs the consumer a handler call and a Kafka copy (retry or DLQ) per
 * attempt, six per event with the default retry settings; at a thousand events a second that
 * work takes the consumer's CPU and the broker's from every other tenant. Once the tenant has
 * `failureThreshold` counted failures in a row, over at least `minStreakMs`, its circuit opens:
 * for `openMs` its events go to the DLQ at their next attempt without a handler call (one copy
 * per event), then one attempt probes; a success closes the circuit, a failure opens it again.
 *
 * A failure counts only if another tenant succeeded on the subscription since this tenant's
 * previous failure: it is the tenant's own. When every tenant fails (the handler's database is
 * down), nobody succeeds, at most one failure per tenant counts at the outage's edges, and the
 * events are retried as configured, so an outage sends no event to the DLQ early. Failures that
 * are NonRetriable (a bad event, not a broken tenant) are not counted by the caller.
 *
 * Every `now` is the monotonic clock's (`performance.now()`, see CircuitClock).
 */
export class TenantCircuits {
  private readonly bySubscription = new Map<string, SubscriptionCircuits>();

  /**
   * `probeLeaseMs`: how long one probing attempt holds the half-open circuit (the handler
   * timeout): shorter, and a second probe would run beside a slow first one; a probe that never
   * reports (interrupted, or failed NonRetriable) frees it when it runs out. `clock`: the
   * system's by default (tests pass their own).
   */
  constructor(
    private readonly options: TenantCircuitOptions,
    private readonly context: { groupId: string; probeLeaseMs: number; clock?: CircuitClock },
  ) {}

  /**
   * The error to dead-letter the attempt with when the tenant's circuit is open (built once per
   * open period), or undefined: run the handler. Healthy tenants have no streak: one lookup.
   */
  openCircuit(subscription: string, tenantId: string, now: number): EventBusError | undefined {
    const streak = this.bySubscription.get(subscription)?.streaks.get(tenantId);
    if (streak?.openUntil === undefined) return undefined;
    if (now < streak.openUntil) return (streak.openError ??= this.openError(subscription, tenantId, streak, streak.openUntil));
    if (streak.probeUntil !== undefined && now < streak.probeUntil)
      return (streak.openError ??= this.openError(subscription, tenantId, streak, streak.probeUntil));
    // Half open: this attempt probes, the others are dead-lettered until it reports (failed,
    // succeeded) or its lease ends: then the next attempt probes.
    streak.probeUntil = now + this.context.probeLeaseMs;
    streak.openError = undefined;
    return undefined;
  }

  succeeded(subscription: string, tenantId: string): CircuitChange {
    const circuits = this.circuitsOf(subscription);
    circuits.successes++;
    if (circuits.streaks.size === 0) return undefined;
    const streak = circuits.streaks.get(tenantId);
    if (!streak) return undefined;
    circuits.streaks.delete(tenantId);
    return streak.opened ? { change: 'closed' } : undefined;
  }

  failed(subscription: string, tenantId: string, error: string, now: number): CircuitChange {
    const circuits = this.circuitsOf(subscription);
    let streak = circuits.streaks.get(tenantId);
    if (streak && !streak.opened && now - streak.lastFailureAt > STALE_STREAK_MS) {
      circuits.streaks.delete(tenantId);
      streak = undefined;
    }
    if (!streak) {
      if (circuits.streaks.size >= MAX_STREAKS_PER_SUBSCRIPTION) circuits.streaks.delete(oldestClosed(circuits.streaks));
      streak = {
        failures: 0,
        countedSince: undefined,
        successesAtLastFailure: circuits.successes,
        lastFailureAt: now,
        lastError: '',
        openUntil: undefined,
        probeUntil: undefined,
        opened: false,
        openError: undefined,
      };
      circuits.streaks.set(tenantId, streak);
    } else if (streak.successesAtLastFailure !== circuits.successes) {
      // Another tenant succeeded since this tenant's previous failure: the failure is the
      // tenant's own. During an outage of every tenant nobody succeeds, so at most one failure
      // per tenant counts at its edges (attempts that end just before or after it), however
      // long it lasts and whatever happened before it.
      streak.failures++;
      streak.countedSince ??= now;
      streak.successesAtLastFailure = circuits.successes;
    }
    streak.lastFailureAt = now;
    // A copy, not a slice: V8 keeps a slice's whole original string alive (a 1 MB message per streak).
    streak.lastError = error.length > MAX_ERROR_CHARS ? Buffer.from(`${error.slice(0, MAX_ERROR_CHARS)}…`).toString() : error;
    // Attempts that started before the circuit opened still fail during it; they do not extend it.
    if (streak.openUntil !== undefined && now < streak.openUntil) return undefined;
    const reopened = streak.opened;
    const due = streak.failures >= this.options.failureThreshold && now - (streak.countedSince ?? now) >= this.options.minStreakMs;
    if (!reopened && !due) return undefined;
    streak.opened = true;
    streak.openUntil = now + this.options.openMs;
    streak.probeUntil = undefined;
    streak.openError = undefined;
    return { change: 'opened', failures: streak.failures, openUntil: this.wallTimeOf(streak.openUntil), lastError: streak.lastError, reopened };
  }

  /** Circuits open now (a gauge). */
  openCount(now: number): number {
    let open = 0;
    for (const { streaks } of this.bySubscription.values())
      for (const s of streaks.values()) if (s.openUntil !== undefined && (now < s.openUntil || (s.probeUntil !== undefined && now < s.probeUntil))) open++;
    return open;
  }

  /**
   * The dead letters' error (class `EventBusError:TENANT_CIRCUIT_OPEN`). No stack: the dead
   * letter's stack would be the consumer's own, not the handler's.
   */
  private openError(subscription: string, tenantId: string, streak: Streak, monotonicUntil: number): EventBusError {
    const { groupId } = this.context;
    const until = this.wallTimeOf(monotonicUntil);
    const error = new EventBusError(
      'TENANT_CIRCUIT_OPEN',
      `handler "${subscription}" was not called: tenant ${JSON.stringify(tenantId)} failed ${streak.failures} attempts in a row while other tenants' events succeeded, ` +
        `so its circuit is open until ${new Date(until).toISOString()}; last error: ${streak.lastError}. ` +
        `Fix the cause, then re-drive: eventbus dlq retry --all --group ${shellQuote(groupId)} --tenant ${shellQuote(tenantId)}`,
      { retriable: false, details: { subscription, tenantId, failures: streak.failures, openUntil: until } },
    );
    error.stack = undefined;
    return error;
  }

  /** The wall-clock time (ms since the epoch) of a monotonic instant: as far from the wall clock's now as it is from the monotonic now. */
  private wallTimeOf(monotonic: number): number {
    const clock = this.context.clock ?? SYSTEM_CLOCK;
    return Math.round(clock.wallNow() + (monotonic - clock.monotonicNow()));
  }

  private circuitsOf(subscription: string): SubscriptionCircuits {
    let circuits = this.bySubscription.get(subscription);
    if (!circuits) {
      circuits = { successes: 0, streaks: new Map() };
      this.bySubscription.set(subscription, circuits);
    }
    return circuits;
  }
}
