import { describe, expect, it } from 'vitest';
import { isEventBusError } from '@eventbus/core';
import { type CircuitChange, TenantCircuits, type TenantCircuitOptions } from './tenant-circuit.js';

const SUB = 'indexer';
const PROBE_LEASE_MS = 500;

/** Monotonic and wall clock both at 0: the wall time of a monotonic instant is the instant itself. */
const ZERO_CLOCK = { monotonicNow: () => 0, wallNow: () => 0 };

function circuitsWith(options: Partial<TenantCircuitOptions>, clock = ZERO_CLOCK): TenantCircuits {
  return new TenantCircuits({ failureThreshold: 3, minStreakMs: 0, openMs: 1000, ...options }, { groupId: 'billing', probeLeaseMs: PROBE_LEASE_MS, clock });
}

/** Fails `n` attempts of `tenant` at `at`, each after a success of another tenant (the failures count), returning the last change. */
function failTimes(circuits: TenantCircuits, tenant: string, n: number, at: number) {
  let change: CircuitChange;
  for (let i = 0; i < n; i++) {
    circuits.succeeded(SUB, 'healthy');
    change = circuits.failed(SUB, tenant, 'downstream refused', at);
  }
  return change;
}

describe('TenantCircuits', () => {
  it('opens after failureThreshold failures in a row while another tenant succeeds, for openMs', () => {
    const circuits = circuitsWith({});
    circuits.failed(SUB, 'x', 'e', 100);
    circuits.succeeded(SUB, 'healthy');
    expect(circuits.failed(SUB, 'x', 'e', 102)).toBeUndefined();
    circuits.succeeded(SUB, 'healthy');
    expect(circuits.failed(SUB, 'x', 'e', 103)).toBeUndefined();
    circuits.succeeded(SUB, 'healthy');
    expect(circuits.failed(SUB, 'x', 'boom', 104)).toEqual({ change: 'opened', failures: 3, openUntil: 1104, lastError: 'boom', reopened: false });
    expect(circuits.openCircuit(SUB, 'x', 500)).toMatchObject({ code: 'TENANT_CIRCUIT_OPEN', details: { failures: 3, openUntil: 1104 } });
    expect(circuits.openCount(500)).toBe(1);
    // Other tenants and other subscriptions of the same tenant are not affected.
    expect(circuits.openCircuit(SUB, 'healthy', 500)).toBeUndefined();
    expect(circuits.openCircuit('other', 'x', 500)).toBeUndefined();
  });

  it('opens only once the counted failures have lasted minStreakMs: a shorter spell is left to the retries', () => {
    const circuits = circuitsWith({ minStreakMs: 2000 });
    circuits.failed(SUB, 'x', 'e', 0);
    expect(failTimes(circuits, 'x', 500, 10)).toBeUndefined(); // first counted at 10
    expect(failTimes(circuits, 'x', 1, 2009)).toBeUndefined();
    expect(failTimes(circuits, 'x', 1, 2010)).toMatchObject({ change: 'opened', failures: 502 });
  });

  it('counts only failures with another tenant succeeding since the previous one: a burst of failures between two successes counts once', () => {
    const circuits = circuitsWith({});
    circuits.failed(SUB, 'x', 'e', 0);
    circuits.succeeded(SUB, 'healthy');
    for (let i = 0; i < 100; i++) expect(circuits.failed(SUB, 'x', 'e', 1)).toBeUndefined();
    expect(failTimes(circuits, 'x', 2, 2)).toMatchObject({ change: 'opened', failures: 3 });
  });

  it('lets one attempt probe after openMs, the others dead-lettered meanwhile: a failure opens it again at once, a success closes it', () => {
    const circuits = circuitsWith({ failureThreshold: 2 });
    circuits.failed(SUB, 'x', 'e', 0);
    failTimes(circuits, 'x', 2, 2);
    expect(circuits.openCircuit(SUB, 'x', 1001)).toBeDefined();
    expect(circuits.openCircuit(SUB, 'x', 1002)).toBeUndefined(); // the probe runs
    expect(circuits.openCircuit(SUB, 'x', 1003)).toMatchObject({ details: { openUntil: 1502 } }); // not a second one
    expect(circuits.openCount(1003)).toBe(1);
    expect(circuits.failed(SUB, 'x', 'still', 1010)).toMatchObject({ change: 'opened', openUntil: 2010, reopened: true });
    expect(circuits.openCircuit(SUB, 'x', 1500)).toMatchObject({ details: { openUntil: 2010 } });
    expect(circuits.openCircuit(SUB, 'x', 2010)).toBeUndefined();
    expect(circuits.succeeded(SUB, 'x')).toEqual({ change: 'closed' });
    expect(circuits.openCircuit(SUB, 'x', 2021)).toBeUndefined();
    // Closed for good: the next failures start a new streak, counted from the start.
    expect(failTimes(circuits, 'x', 1, 2030)).toBeUndefined();
  });

  it('lets another attempt probe once a probe reported nothing for its lease (interrupted, or failed NonRetriable)', () => {
    const circuits = circuitsWith({ failureThreshold: 1 });
    circuits.failed(SUB, 'x', 'e', 0);
    failTimes(circuits, 'x', 1, 1);
    expect(circuits.openCircuit(SUB, 'x', 1001)).toBeUndefined(); // probe 1, never reports
    expect(circuits.openCircuit(SUB, 'x', 1500)).toBeDefined();
    expect(circuits.openCircuit(SUB, 'x', 1501)).toBeUndefined(); // probe 2
  });

  it('opens no circuit while every tenant fails (an outage of the handler for everyone), however long', () => {
    const circuits = circuitsWith({});
    for (let t = 0; t < 100; t++) {
      expect(circuits.failed(SUB, 'a', 'db down', t)).toBeUndefined();
      expect(circuits.failed(SUB, 'b', 'db down', t)).toBeUndefined();
    }
    expect(circuits.openCount(100)).toBe(0);
  });

  it('opens no circuit in an outage of every tenant that begins with one tenant failing before an attempt of another in flight succeeds', () => {
    const circuits = circuitsWith({});
    for (let t = 0; t < 10; t++) circuits.succeeded(SUB, `t${t % 3}`);
    circuits.failed(SUB, 'b', 'db down', 10);
    circuits.succeeded(SUB, 'a'); // a's attempt was past the database when it went down
    for (let t = 11; t < 1000; t++) for (const tenant of ['a', 'b', 'c']) expect(circuits.failed(SUB, tenant, 'db down', t)).toBeUndefined();
  });

  it("does not count an old streak's failures towards a later outage of every tenant", () => {
    const circuits = circuitsWith({});
    circuits.failed(SUB, 'b', 'blip', 0); // its later events went to another member
    for (let i = 0; i < 1000; i++) circuits.succeeded(SUB, 'a');
    for (let t = 1; t < 1000; t++) for (const tenant of ['a', 'b']) expect(circuits.failed(SUB, tenant, 'db down', t)).toBeUndefined();
  });

  it('starts a streak again after a minute without failures: minStreakMs counts from the failures of now', () => {
    const circuits = circuitsWith({ minStreakMs: 2000 });
    circuits.failed(SUB, 'x', 'e', 0);
    failTimes(circuits, 'x', 2, 1); // counted since 1, then quiet
    expect(failTimes(circuits, 'x', 5, 70_000)).toBeUndefined(); // a fresh streak: not 2 s old
    expect(failTimes(circuits, 'x', 1, 71_999)).toBeUndefined();
    expect(failTimes(circuits, 'x', 1, 72_000)).toMatchObject({ change: 'opened' });
  });

  it('measures the open period on the monotonic clock and dates it on the wall clock, for logs and dead letters', () => {
    const clock = { monotonic: 5000, wall: Date.parse('2026-03-01T12:00:00.000Z') };
    const circuits = circuitsWith({ failureThreshold: 1, openMs: 10_000 }, { monotonicNow: () => clock.monotonic, wallNow: () => clock.wall });
    circuits.failed(SUB, 'x', 'e', 5000);
    circuits.succeeded(SUB, 'healthy');
    expect(circuits.failed(SUB, 'x', 'e', 5000)).toMatchObject({ change: 'opened', openUntil: Date.parse('2026-03-01T12:00:10.000Z') });
    // NTP steps the wall clock an hour forward while 4 s pass.
    clock.wall += 3_600_000 + 4000;
    clock.monotonic += 4000;
    expect(circuits.openCircuit(SUB, 'x', clock.monotonic)?.message).toContain('its circuit is open until 2026-03-01T13:00:10.000Z');
    // 10 s after it opened, whatever the wall clock says: the probe.
    expect(circuits.openCircuit(SUB, 'x', 15_000)).toBeUndefined();
  });

  it('does not extend an open circuit with failures of attempts that started before it opened', () => {
    const circuits = circuitsWith({ failureThreshold: 1 });
    circuits.failed(SUB, 'x', 'e', 0);
    expect(failTimes(circuits, 'x', 1, 2)).toMatchObject({ change: 'opened', openUntil: 1002 });
    expect(failTimes(circuits, 'x', 1, 900)).toBeUndefined();
    expect(circuits.openCircuit(SUB, 'x', 1002)).toBeUndefined();
  });

  it('forgets a streak whose circuit never opened before an open one when it holds too many', () => {
    const circuits = circuitsWith({ failureThreshold: 1, openMs: 60_000 });
    circuits.failed(SUB, 'broken', 'e', 0);
    failTimes(circuits, 'broken', 1, 1);
    for (let i = 0; i < 10_001; i++) circuits.failed(SUB, `blip${i}`, 'e', 2);
    expect(circuits.openCircuit(SUB, 'broken', 3)).toBeDefined();
  });

  it('dead-letters with one error per open period: bounded last error, no stack, the tenant, the count and a re-drive command quoted for a shell', () => {
    const circuits = circuitsWith({ failureThreshold: 1, openMs: 60_000 });
    const tenant = "acme's $HOME";
    circuits.failed(SUB, tenant, 'e', 0);
    circuits.succeeded(SUB, 'healthy');
    circuits.failed(SUB, tenant, 'y'.repeat(10_000), 2);
    const error = circuits.openCircuit(SUB, tenant, 3)!;
    expect(circuits.openCircuit(SUB, tenant, 4)).toBe(error);
    expect(isEventBusError(error, 'TENANT_CIRCUIT_OPEN')).toBe(true);
    expect(error.retriable).toBe(false);
    expect(error.stack).toBeUndefined();
    expect(error.message.length).toBeLessThan(1000);
    expect(error.message).toContain(`handler "indexer" was not called: tenant "acme's $HOME" failed 1 attempts in a row`);
    expect(error.message).toContain('1970-01-01T00:01:00.002Z');
    expect(error.message).toContain(`eventbus dlq retry --all --group billing --tenant 'acme'\\''s $HOME'`);
  });
});
