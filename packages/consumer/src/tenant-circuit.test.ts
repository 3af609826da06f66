import { describe, expect, it } from 'vitest';
import { isEventBusError } from '@eventbus/core';
import { type CircuitChange, TenantCircuits, tenantCircuitOpenError } from './tenant-circuit.js';

const SUB = 'indexer';

/** Fails `n` attempts of `tenant` at `at`, returning the last change. */
function failTimes(circuits: TenantCircuits, tenant: string, n: number, at: number) {
  let change: CircuitChange;
  for (let i = 0; i < n; i++) change = circuits.failed(SUB, tenant, 'downstream refused', at);
  return change;
}

describe('TenantCircuits', () => {
  it('opens after failureThreshold failures in a row while another tenant succeeds, for openMs', () => {
    const circuits = new TenantCircuits({ failureThreshold: 3, openMs: 1000 });
    circuits.failed(SUB, 'x', 'e', 100);
    circuits.succeeded(SUB, 'healthy', 101);
    expect(circuits.failed(SUB, 'x', 'e', 102)).toBeUndefined();
    expect(circuits.failed(SUB, 'x', 'e', 103)).toBeUndefined();
    expect(circuits.failed(SUB, 'x', 'boom', 104)).toEqual({ change: 'opened', failures: 3, openUntil: 1104, lastError: 'boom' });
    expect(circuits.openCircuit(SUB, 'x', 500)).toEqual({ failures: 3, openUntil: 1104, lastError: 'boom' });
    expect(circuits.openCount(500)).toBe(1);
    // Other tenants and other subscriptions of the same tenant are not affected.
    expect(circuits.openCircuit(SUB, 'healthy', 500)).toBeUndefined();
    expect(circuits.openCircuit('other', 'x', 500)).toBeUndefined();
  });

  it('lets one attempt probe after openMs: a failure opens it again at once, a success closes it', () => {
    const circuits = new TenantCircuits({ failureThreshold: 2, openMs: 1000 });
    circuits.failed(SUB, 'x', 'e', 0);
    circuits.succeeded(SUB, 'healthy', 1);
    failTimes(circuits, 'x', 2, 2);
    expect(circuits.openCircuit(SUB, 'x', 1001)).toBeDefined();
    expect(circuits.openCircuit(SUB, 'x', 1002)).toBeUndefined(); // the probe runs
    expect(circuits.openCount(1002)).toBe(0);
    expect(circuits.failed(SUB, 'x', 'still', 1010)).toMatchObject({ change: 'opened', openUntil: 2010 });
    expect(circuits.openCircuit(SUB, 'x', 1500)).toBeDefined();
    expect(circuits.openCircuit(SUB, 'x', 2010)).toBeUndefined();
    expect(circuits.succeeded(SUB, 'x', 2020)).toEqual({ change: 'closed' });
    expect(circuits.openCircuit(SUB, 'x', 2021)).toBeUndefined();
    // Closed for good: the next failures start a new streak, counted from the start.
    expect(circuits.failed(SUB, 'x', 'e', 2030)).toBeUndefined();
  });

  it('opens no circuit while every tenant fails (an outage of the handler for everyone), however long', () => {
    const circuits = new TenantCircuits({ failureThreshold: 3, openMs: 1000 });
    for (let t = 0; t < 100; t++) {
      expect(circuits.failed(SUB, 'a', 'db down', t)).toBeUndefined();
      expect(circuits.failed(SUB, 'b', 'db down', t)).toBeUndefined();
    }
    expect(circuits.openCount(100)).toBe(0);
  });

  it("counts a tenant's failures only from the others' first success: an outage's failures do not open it when everyone recovers", () => {
    const circuits = new TenantCircuits({ failureThreshold: 3, openMs: 1000 });
    failTimes(circuits, 'b', 50, 10); // during the outage
    circuits.succeeded(SUB, 'a', 20); // recovered for a
    // Attempts of b that started during the outage end with failures after it: below the threshold.
    expect(failTimes(circuits, 'b', 2, 21)).toBeUndefined();
    expect(circuits.succeeded(SUB, 'b', 22)).toBeUndefined(); // b recovers too: never opened, nothing to log
    // b alone keeps failing (its own problem): it opens after the threshold.
    failTimes(circuits, 'b', 1, 30);
    circuits.succeeded(SUB, 'a', 31);
    expect(failTimes(circuits, 'b', 3, 32)).toMatchObject({ change: 'opened' });
  });

  it('does not extend an open circuit with failures of attempts that started before it opened', () => {
    const circuits = new TenantCircuits({ failureThreshold: 1, openMs: 1000 });
    circuits.failed(SUB, 'x', 'e', 0);
    circuits.succeeded(SUB, 'healthy', 1);
    expect(circuits.failed(SUB, 'x', 'e', 2)).toMatchObject({ change: 'opened', openUntil: 1002 });
    expect(circuits.failed(SUB, 'x', 'late', 900)).toBeUndefined();
    expect(circuits.openCircuit(SUB, 'x', 1002)).toBeUndefined();
  });

  it('keeps a bounded last error and names the tenant, the count and the fix in the dead letter error', () => {
    const circuits = new TenantCircuits({ failureThreshold: 1, openMs: 60_000 });
    circuits.failed(SUB, 'x', 'e', 0);
    circuits.succeeded(SUB, 'healthy', 1);
    circuits.failed(SUB, 'x', 'y'.repeat(10_000), 2);
    const open = circuits.openCircuit(SUB, 'x', 3)!;
    expect(open.lastError.length).toBeLessThanOrEqual(501);
    const error = tenantCircuitOpenError(SUB, 'x', 'billing', open);
    expect(isEventBusError(error, 'TENANT_CIRCUIT_OPEN')).toBe(true);
    expect(error.retriable).toBe(false);
    expect(error.message).toContain('handler "indexer" was not called: tenant "x" failed 1 attempts in a row');
    expect(error.message).toContain('1970-01-01T00:01:00.002Z');
    expect(error.message).toContain('eventbus dlq retry --all --group billing --tenant "x"');
  });
});
