import { EventBusError } from '@eventbus/core';

/** Settings of the per-tenant circuit breaker (`EventConsumerOptions.tenantCircuitBreaker`). */
export interface TenantCircuitOptions {
  /** Failed attempts in a row, for one tenant and one subscription, that open its circuit. Default 100. */
  failureThreshold: number;
  /** How long a circuit stays open before one attempt probes it again. Default 30000 ms. */
  openMs: number;
}

export const DEFAULT_TENANT_CIRCUIT: Readonly<TenantCircuitOptions> = Object.freeze({ failureThreshold: 100, openMs: 30_000 });

/** A tenant's failures in a row on one subscription; deleted at its next success. */
interface Streak {
  /** Failures counted towards opening: those since another tenant first succeeded during the streak. */
  failures: number;
  /** When the first failure of the streak happened. */
  since: number;
  /** Another tenant succeeded since `since`: failures count from then on. */
  counting: boolean;
  lastError: string;
  /** While open: when the next attempt may probe. */
  openUntil: number | undefined;
  /** The circuit opened during this streak: the next failure after openUntil opens it again at once. */
  opened: boolean;
}

/** One subscription's streaks, and when any tenant last succeeded on it. */
interface SubscriptionCircuits {
  lastSuccessAt: number;
  streaks: Map<string, Streak>;
}

/** What `failed` and `succeeded` report, so the caller logs the change once. */
export type CircuitChange = { change: 'opened'; failures: number; openUntil: number; lastError: string } | { change: 'closed' } | undefined;

/**
 * Bounds memory when many tenants fail at once: the oldest streak is forgotten (its circuit, if
 * open, closes), which costs only retries, never an event.
 */
const MAX_STREAKS_PER_SUBSCRIPTION = 10_000;
/** The last error kept per streak, for the dead letters' message (which the DLQ caps at 2 KiB anyway). */
const MAX_ERROR_CHARS = 500;

/**
 * The per-tenant circuit breaker of one consumer process. A tenant whose every attempt on a
 * subscription fails costs the consumer a handler call and a Kafka copy (retry or DLQ) per
 * attempt, six per event with the default retry settings; at a thousand events a second that
 * work took the consumer's CPU and the broker's from every other tenant (their p99 rose 7×).
 * Once the tenant has failed `failureThreshold` attempts in a row while other tenants' events
 * succeeded on the same subscription (counted from another tenant's first success during its
 * streak), its circuit opens: for `openMs` its events go to the DLQ
 * at their next attempt without a handler call (one copy per event), then one attempt probes;
 * a success closes the circuit, a failure opens it again.
 *
 * Only a failure that is the tenant's own opens a circuit: when every tenant fails (the
 * handler's database is down), nobody succeeds, no failure counts, and the events are retried
 * as configured, so a short outage sends no event to the DLQ early. Failures
 * that are NonRetriable (a bad event, not a broken tenant) are not counted by the caller.
 */
export class TenantCircuits {
  private readonly bySubscription = new Map<string, SubscriptionCircuits>();

  constructor(private readonly options: TenantCircuitOptions) {}

  /** The streak of an open circuit (the attempt is to be dead-lettered), or undefined: run the handler. */
  openCircuit(subscription: string, tenantId: string, now: number): OpenCircuit | undefined {
    const streak = this.bySubscription.get(subscription)?.streaks.get(tenantId);
    if (streak?.openUntil === undefined) return undefined;
    if (now < streak.openUntil) return { failures: streak.failures, openUntil: streak.openUntil, lastError: streak.lastError };
    // Half open: this attempt probes; its failure opens the circuit again (failed), a success closes it.
    streak.openUntil = undefined;
    return undefined;
  }

  succeeded(subscription: string, tenantId: string, now: number): CircuitChange {
    const circuits = this.circuitsOf(subscription);
    circuits.lastSuccessAt = now;
    if (circuits.streaks.size === 0) return undefined;
    const streak = circuits.streaks.get(tenantId);
    if (!streak) return undefined;
    circuits.streaks.delete(tenantId);
    return streak.opened ? { change: 'closed' } : undefined;
  }

  failed(subscription: string, tenantId: string, error: string, now: number): CircuitChange {
    const circuits = this.circuitsOf(subscription);
    let streak = circuits.streaks.get(tenantId);
    if (!streak) {
      if (circuits.streaks.size >= MAX_STREAKS_PER_SUBSCRIPTION) circuits.streaks.delete(circuits.streaks.keys().next().value!);
      streak = { failures: 0, since: now, counting: false, lastError: '', openUntil: undefined, opened: false };
      circuits.streaks.set(tenantId, streak);
    }
    streak.lastError = error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS)}…` : error;
    // Failures count only once another tenant succeeded during the streak, from then on: after an
    // outage of every tenant, the failures of the outage (and attempts that started during it and
    // end after) do not open the circuit of a tenant that is about to recover with the others.
    if (!streak.counting && circuits.lastSuccessAt > streak.since) streak.counting = true;
    if (streak.counting) streak.failures++;
    // Attempts that started before the circuit opened still fail after it; they do not extend it.
    if (streak.openUntil !== undefined) return undefined;
    if (streak.opened || streak.failures >= this.options.failureThreshold) {
      streak.opened = true;
      streak.openUntil = now + this.options.openMs;
      return { change: 'opened', failures: streak.failures, openUntil: streak.openUntil, lastError: error };
    }
    return undefined;
  }

  /** Circuits open now (a gauge). */
  openCount(now: number): number {
    let open = 0;
    for (const { streaks } of this.bySubscription.values()) for (const s of streaks.values()) if (s.openUntil !== undefined && now < s.openUntil) open++;
    return open;
  }

  private circuitsOf(subscription: string): SubscriptionCircuits {
    let circuits = this.bySubscription.get(subscription);
    if (!circuits) {
      circuits = { lastSuccessAt: Number.NEGATIVE_INFINITY, streaks: new Map() };
      this.bySubscription.set(subscription, circuits);
    }
    return circuits;
  }
}

/** The facts of an open circuit an attempt met. */
export interface OpenCircuit {
  failures: number;
  openUntil: number;
  lastError: string;
}

/** The error a dead letter of an open circuit carries (class `EventBusError:TENANT_CIRCUIT_OPEN`). */
export function tenantCircuitOpenError(subscription: string, tenantId: string, groupId: string, circuit: OpenCircuit): EventBusError {
  return new EventBusError(
    'TENANT_CIRCUIT_OPEN',
    `handler "${subscription}" was not called: tenant ${JSON.stringify(tenantId)} failed ${circuit.failures} attempts in a row while other tenants' events succeeded, ` +
      `so its circuit is open until ${new Date(circuit.openUntil).toISOString()}; last error: ${circuit.lastError}. ` +
      `Fix the cause, then re-drive: eventbus dlq retry --all --group ${groupId} --tenant ${JSON.stringify(tenantId)}`,
    { retriable: false, details: { subscription, tenantId, failures: circuit.failures, openUntil: circuit.openUntil } },
  );
}
