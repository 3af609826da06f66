import { describe, expect, it } from 'vitest';
import { checkDelivery, ISOLATION_P99_RATIO, percentile, violations, type CheckInput, type DeliveryRecord } from './checker.js';

const write = (eventId: string, tenantId: string, seq: number, committedAtMs = 1000, outcome: 'committed' | 'rolled_back' = 'committed') => ({
  eventId,
  tenantId,
  seq,
  outcome,
  ...(outcome === 'committed' ? { committedAtMs } : {}),
});
let nextId = 1;
const delivery = (eventId: string, tenantId: string, seq: number, receivedAtMs: number, at = `0/${nextId}`): DeliveryRecord => {
  const [partition, offset] = at.split('/');
  return { id: nextId++, eventId, tenantId, seq, worker: 'w', partition: Number(partition), offset: offset!, receivedAtMs };
};
const base = (over: Partial<CheckInput>): CheckInput => ({
  writes: [],
  eventLog: [],
  deliveries: [],
  effects: [],
  deadLettered: [],
  faults: [],
  loadEndMs: 1000,
  batchBound: 10,
  ...over,
});

describe('checkDelivery', () => {
  it('counts nothing wrong when every committed event arrives once, in order', () => {
    const r = checkDelivery(
      base({
        writes: [write('a', 't1', 1), write('b', 't1', 2), write('x', 't1', 3, 0, 'rolled_back')],
        eventLog: [
          { eventId: 'a', tenantId: 't1', seq: 1 },
          { eventId: 'b', tenantId: 't1', seq: 2 },
        ],
        deliveries: [delivery('a', 't1', 1, 1100), delivery('b', 't1', 2, 1300)],
        effects: [{ eventId: 'a' }, { eventId: 'b' }],
      }),
    );
    expect(r).toMatchObject({ committed: 2, rolledBack: 1, delivered: 2, lost: [], phantom: [], inversions: [], effectsNotOnce: [], atomicity: [] });
    expect(r.latencyMs).toEqual({ p50: 100, p99: 300, max: 300 });
    expect(r.recoveryMs).toBe(300);
    expect(violations(r)).toEqual([]);
  });

  it('finds lost, phantom (a rolled-back write delivered) and atomicity problems by event id', () => {
    const r = checkDelivery(
      base({
        writes: [write('a', 't1', 1), write('gone', 't1', 2), write('rb', 't1', 3, 0, 'rolled_back')],
        eventLog: [
          { eventId: 'a', tenantId: 't1', seq: 1 },
          { eventId: 'never', tenantId: 't1', seq: 4 },
        ],
        deliveries: [delivery('a', 't1', 1, 1100), delivery('rb', 't1', 3, 1200)],
        effects: [{ eventId: 'a' }, { eventId: 'rb' }],
      }),
    );
    expect(r.lost).toEqual(['never']);
    expect(r.phantom).toEqual(['rb']);
    expect(r.atomicity).toEqual(['gone committed but missing from event_log']);
    expect(violations(r).join('\n')).toMatch(/lost 1: never[\s\S]*phantom 1: rb/);
  });

  it('tells republished from redelivered duplicates and checks order after dropping them', () => {
    const r = checkDelivery(
      base({
        eventLog: [1, 2, 3].map((seq) => ({ eventId: `e${seq}`, tenantId: 't1', seq })),
        deliveries: [
          delivery('e1', 't1', 1, 1, '0/1'),
          delivery('e2', 't1', 2, 2, '0/2'),
          delivery('e1', 't1', 1, 3, '0/3'), // relay sent e1 again: another offset
          delivery('e2', 't1', 2, 4, '0/2'), // consumer handled offset 2 again
          delivery('e3', 't1', 3, 5, '0/4'),
        ],
        effects: [{ eventId: 'e1' }, { eventId: 'e2' }, { eventId: 'e3' }],
      }),
    );
    expect(r.duplicates).toMatchObject({ total: 2, republished: 1, redelivered: 1, bound: 10 });
    expect(r.inversions).toEqual([]);
  });

  it('reports an inversion with both event ids, and effects applied twice', () => {
    const r = checkDelivery(
      base({
        eventLog: [
          { eventId: 'e1', tenantId: 't1', seq: 1 },
          { eventId: 'e2', tenantId: 't1', seq: 2 },
          { eventId: 'f1', tenantId: 't2', seq: 1 },
        ],
        deliveries: [delivery('e2', 't1', 2, 1), delivery('f1', 't2', 1, 2), delivery('e1', 't1', 1, 3)],
        effects: [{ eventId: 'e1' }, { eventId: 'e2' }, { eventId: 'e2' }, { eventId: 'f1' }],
      }),
    );
    expect(r.inversions).toEqual(['t1: seq 1 (e1) delivered after seq 2 (e2)']);
    expect(r.effectsNotOnce).toEqual(['e2 applied 2 times']);
  });

  it('expects poison events in the DLQ table, not delivered, and keeps them out of latency', () => {
    const r = checkDelivery(
      base({
        writes: [write('p', 't1', 1, 1000), write('ok', 't2', 1, 1000)],
        eventLog: [
          { eventId: 'p', tenantId: 't1', seq: 1, poison: 'always' },
          { eventId: 'ok', tenantId: 't2', seq: 1 },
          { eventId: 'p2', tenantId: 't1', seq: 2, poison: 'nonretriable' },
        ],
        deliveries: [delivery('ok', 't2', 1, 1050)],
        effects: [{ eventId: 'ok' }],
        deadLettered: ['p'],
      }),
    );
    expect(r.lost).toEqual(['p2']);
    expect(r).toMatchObject({ poisonCommitted: 2, deadLettered: 1, delivered: 1 });
    expect(r.cleanTenantLatencyMs.p99).toBe(50);
  });

  it('flags the tenants without poison slowed beyond 1.5× the control group, and only then', () => {
    const input = (delayMs: number) =>
      base({
        writes: [write('p', 't1', 1, 1000), write('ok', 't2', 1, 1000)],
        eventLog: [
          { eventId: 'p', tenantId: 't1', seq: 1, poison: 'always' },
          { eventId: 'ok', tenantId: 't2', seq: 1 },
        ],
        deliveries: [delivery('ok', 't2', 1, 1000 + delayMs)],
        controlDeliveries: [{ ...delivery('ok', 't2', 1, 1100), worker: 'control' }],
        effects: [{ eventId: 'ok' }],
        deadLettered: ['p'],
      });
    expect(violations(checkDelivery(input(150)), ISOLATION_P99_RATIO)).toEqual([]);
    expect(violations(checkDelivery(input(400)))).toEqual([]); // no bound given: not checked
    expect(violations(checkDelivery(input(151)), ISOLATION_P99_RATIO)).toEqual([
      'failing tenants slowed the others: p99 151 ms for the tenants that wrote no poison, above 1.5× the 100 ms of the control group reading the same events',
    ]);
  });

  it('measures recovery from the end of each fault and flags republished duplicates above one batch per fault', () => {
    const eventLog = Array.from({ length: 30 }, (_, i) => ({ eventId: `e${i}`, tenantId: 't1', seq: i }));
    const r = checkDelivery(
      base({
        writes: eventLog.map((e, i) => write(e.eventId, 't1', i, i < 10 ? 500 : 2500)),
        eventLog,
        // The first ten committed before the fault ended at 2000 and arrive by 4000; every event twice, at another offset.
        deliveries: eventLog.flatMap((e, i) => [delivery(e.eventId, 't1', i, i < 10 ? 4000 : 2600, `0/${i}`), delivery(e.eventId, 't1', i, 5000, `1/${i}`)]),
        effects: eventLog.map((e) => ({ eventId: e.eventId })),
        faults: [{ kind: 'relay SIGKILL', atMs: 1000, endMs: 2000 }],
      }),
    );
    expect(r.recoveryMs).toBe(2000);
    expect(r.recoveryByKindMs).toEqual({ 'relay SIGKILL': 2000 });
    expect(r.duplicates).toMatchObject({ total: 30, republished: 30, bound: 10 });
    expect(r.duplicates.samples[0]).toMatchObject({
      eventId: 'e0',
      deliveries: [
        { partition: 0, offset: '0' },
        { partition: 1, offset: '0' },
      ],
    });
    expect(violations(r)[0]).toMatch(/^republished duplicates 30 above the bound 10: e0, e1/);
  });

  it('allows no republished duplicate when the scenario sets a bound of 0 (broker faults, no project crash)', () => {
    const eventLog = [0, 1].map((i) => ({ eventId: `e${i}`, tenantId: 't1', seq: i }));
    const r = checkDelivery(
      base({
        eventLog,
        deliveries: [delivery('e0', 't1', 0, 1, '0/0'), delivery('e1', 't1', 1, 2, '0/1'), delivery('e0', 't1', 0, 3, '0/2')],
        effects: eventLog.map((e) => ({ eventId: e.eventId })),
        faults: [{ kind: 'broker SIGKILL', atMs: 0, endMs: 1 }],
        republishBound: 0,
      }),
    );
    expect(r.duplicates).toMatchObject({ republished: 1, bound: 0, events: ['e0'] });
    expect(violations(r)).toEqual(['republished duplicates 1 above the bound 0: e0']);
  });

  it('reports the worst recovery per fault kind beside the overall worst', () => {
    const eventLog = [0, 1, 2].map((i) => ({ eventId: `e${i}`, tenantId: 't1', seq: i }));
    const r = checkDelivery(
      base({
        // e0 commits before the reset ends (2000) and arrives 500 ms after; e1 and e2 commit during the black hole (ends 6000) and arrive 3000 ms after.
        writes: [write('e0', 't1', 0, 1500), write('e1', 't1', 1, 4000), write('e2', 't1', 2, 5000)],
        eventLog,
        deliveries: [delivery('e0', 't1', 0, 2500), delivery('e1', 't1', 1, 8500), delivery('e2', 't1', 2, 9000)],
        effects: eventLog.map((e) => ({ eventId: e.eventId })),
        faults: [
          { kind: 'reset', atMs: 1000, endMs: 2000 },
          { kind: 'black hole', atMs: 3000, endMs: 6000 },
        ],
      }),
    );
    // The reset's recovery ends with e0; e1 and e2 committed after it ended.
    expect(r.recoveryByKindMs).toEqual({ reset: 500, 'black hole': 3000 });
    expect(r.recoveryMs).toBe(3000);
  });
});

describe('percentile', () => {
  it('is the nearest rank', () => {
    expect(percentile([], 99)).toBe(0);
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        99,
      ),
    ).toBe(99);
  });
});
