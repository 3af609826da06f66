import { describe, expect, it } from 'vitest';
import { TenantCircuits } from './tenant-circuit.js';

const SUB = 's';
// Review of the tenant circuit breaker: each case states the intended semantics and fails on de6c8d4.
describe('tenant circuit review cases', () => {
  it('A: outage edge: one in-flight success of another tenant just after the outage began makes every outage failure count', () => {
    const c = new TenantCircuits({ failureThreshold: 100, openMs: 30_000 });
    // healthy traffic before the outage
    for (let t = 0; t < 1000; t++) c.succeeded(SUB, `t${t % 4}`, t);
    // outage begins at 1000: big tenant b's attempt fails first, tenant a's attempt that was already
    // past its DB work finishes with success a millisecond later; from then on everybody fails.
    c.failed(SUB, 'b', 'db down', 1000);
    c.succeeded(SUB, 'a', 1001);
    let opened: unknown;
    for (let t = 1002; t < 3000; t++) {
      for (const tenant of ['a', 'b', 'c', 'd']) {
        const ch = c.failed(SUB, tenant, 'db down', t);
        if (ch && !opened) opened = { tenant, t, ch };
      }
    }
    expect(opened).toBeUndefined();
  });

  it('B: stale streak from long ago (tenant failed once, never succeeded here since) counts every failure of a later global outage', () => {
    const c = new TenantCircuits({ failureThreshold: 100, openMs: 30_000 });
    c.failed(SUB, 'b', 'blip', 0); // e.g. its retry went to another member, or its partition moved away
    for (let t = 1; t < 86_400_000; t += 60_000) c.succeeded(SUB, 'a', t); // a day of others succeeding
    let opened: unknown;
    const T = 86_400_000;
    for (let i = 0; i < 200; i++) for (const tenant of ['a', 'b']) {
      const ch = c.failed(SUB, tenant, 'db down', T + i);
      if (ch && !opened) opened = { tenant, i };
    }
    expect(opened).toBeUndefined();
  });

  it('C: half open admits every attempt until the probe reports, not one', () => {
    const c = new TenantCircuits({ failureThreshold: 1, openMs: 1000 });
    c.failed(SUB, 'x', 'e', 0);
    c.succeeded(SUB, 'y', 1);
    c.failed(SUB, 'x', 'e', 2);
    const admitted = [1002, 1003, 1004, 1005].filter((t) => c.openCircuit(SUB, 'x', t) === undefined);
    expect(admitted.length).toBe(1);
  });

  it('D: eviction drops the open circuit of the one broken tenant first when 10,000 others failed once', () => {
    const c = new TenantCircuits({ failureThreshold: 1, openMs: 60_000 });
    c.failed(SUB, 'broken', 'e', 0);
    c.succeeded(SUB, 'y', 1);
    c.failed(SUB, 'broken', 'e', 2);
    for (let i = 0; i < 10_000; i++) c.failed(SUB, `blip${i}`, 'e', 3);
    expect(c.openCircuit(SUB, 'broken', 4)).toBeDefined();
  });
});
