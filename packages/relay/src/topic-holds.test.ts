import { describe, expect, it } from 'vitest';
import { resolveRelayOptions } from './options.js';
import { TopicHolds } from './topic-holds.js';

function clock(start = 1_000_000) {
  const c = { now: start, advance: (ms: number) => (c.now += ms) };
  return c;
}

describe('TopicHolds', () => {
  it('holds a topic after a refusal for 1 s, then twice as long after each refusal of a probe, up to 30 s', () => {
    const c = clock();
    const holds = new TopicHolds({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 }, () => c.now);
    expect(holds.heldUntil('t')).toBeUndefined();
    const periods: number[] = [];
    for (let i = 0; i < 7; i++) {
      const change = holds.refused('t', 'gone.happened');
      expect(change.opened).toBe(true);
      if (change.opened) periods.push(change.periodMs);
      expect(holds.heldUntil('t')).toBe(change.until);
      c.advance(change.until - c.now - 1);
      expect(holds.heldUntil('t')).toBe(change.until); // held to its last millisecond
      c.advance(1);
      expect(holds.heldUntil('t')).toBeUndefined(); // ran out: the next row is offered (the probe)
    }
    expect(periods).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it('a refusal during a running hold (another lane offered the same topic) changes nothing', () => {
    const c = clock();
    const holds = new TopicHolds({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 }, () => c.now);
    const first = holds.refused('t', 'a.x');
    c.advance(500);
    expect(holds.refused('t', 'b.x')).toEqual({ opened: false, until: first.until });
    c.advance(500);
    const next = holds.refused('t', 'a.x');
    expect(next).toEqual({ opened: true, until: c.now + 2000, periodMs: 2000 });
  });

  it('ends the hold when the topic takes a message, with the event types held back, and starts over at 1 s', () => {
    const c = clock();
    const holds = new TopicHolds({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 }, () => c.now);
    holds.refused('t', 'gone.happened');
    holds.heldBack('t', 'gone.other');
    holds.refused('u', 'u.x');
    expect(holds.list().map((h) => h.topic)).toEqual(['t', 'u']);
    c.advance(1000);
    holds.refused('t', 'gone.happened'); // 2 s
    expect([...(holds.published('t') ?? [])].sort()).toEqual(['gone.happened', 'gone.other']);
    expect(holds.published('t')).toBeUndefined();
    expect(holds.heldUntil('t')).toBeUndefined();
    expect(holds.list().map((h) => h.topic)).toEqual(['u']);
    expect(holds.refused('t', 'gone.happened')).toMatchObject({ opened: true, periodMs: 1000 });
  });

  it('reports a topic held for alertAfterMs once, lists it as overdue until it is published, and starts counting anew after', () => {
    const c = clock();
    const reported: Array<{ topic: string; since: number }> = [];
    const holds = new TopicHolds(
      { initialMs: 1000, maxMs: 30_000, alertAfterMs: 60_000 },
      () => c.now,
      (held) => reported.push({ topic: held.topic, since: held.since }),
    );
    const since = c.now;
    holds.refused('t', 'gone.happened');
    c.advance(59_999);
    holds.heldBack('t', 'gone.happened');
    holds.refused('t', 'gone.happened');
    expect(reported).toEqual([]);
    expect(holds.overdue()).toEqual([]);
    c.advance(1);
    holds.heldBack('t', 'gone.happened');
    expect(reported).toEqual([{ topic: 't', since }]);
    expect(holds.overdue().map((h) => h.topic)).toEqual(['t']);
    c.advance(120_000);
    holds.refused('t', 'gone.happened');
    holds.list();
    expect(reported).toHaveLength(1); // once per topic
    holds.published('t');
    expect(holds.overdue()).toEqual([]);
    holds.refused('t', 'gone.happened'); // missing again: counted from now
    c.advance(59_999);
    holds.list();
    expect(reported).toHaveLength(1);
    c.advance(1);
    holds.list(); // noticed without a refusal too (health polls list)
    expect(reported).toHaveLength(2);
  });

  it("restores a hold from rows parked in the outbox as run out (the next row asks Kafka), keeping a running hold's timing", () => {
    const c = clock();
    const holds = new TopicHolds({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 }, () => c.now);
    expect(holds.heldTopics()).toBeUndefined();
    holds.restore('t', ['t.a', 't.b']);
    expect(holds.has('t')).toBe(true);
    expect(holds.heldUntil('t')).toBeUndefined();
    expect([...(holds.eventTypesOf('t') ?? [])].sort()).toEqual(['t.a', 't.b']);
    const running = holds.refused('u', 'u.a');
    holds.restore('u', ['u.b']);
    expect(holds.heldUntil('u')).toBe(running.until);
    expect([...(holds.heldTopics() ?? [])].sort()).toEqual(['t', 'u']);
    expect([...(holds.published('u') ?? [])].sort()).toEqual(['u.a', 'u.b']);
    expect(holds.eventTypesOf('u')).toBeUndefined();
  });

  it('a topic never refused is not held and has nothing to release', () => {
    const holds = new TopicHolds();
    holds.heldBack('t', 'x.y');
    expect(holds.heldUntil('t')).toBeUndefined();
    expect(holds.published('t')).toBeUndefined();
    expect(holds.list()).toEqual([]);
  });

  it('a hold stands until a wake of its parked rows begins: not while one is under way, again after one failed, no more once published', () => {
    const holds = new TopicHolds();
    expect(holds.standing('t')).toBe(false); // never held
    holds.refused('t', 'x.y');
    expect(holds.standing('t')).toBe(true);
    holds.wakeStarted('t');
    holds.wakeStarted('t'); // two lanes found the topic
    holds.wakeEnded('t');
    expect(holds.standing('t')).toBe(false);
    holds.wakeEnded('t'); // both failed: the hold stays
    expect(holds.standing('t')).toBe(true);
    holds.wakeStarted('t');
    holds.wakeEnded('t');
    holds.published('t');
    expect(holds.standing('t')).toBe(false);
  });

  it('parks a held-back row for the longest hold, or as long as it has waited, up to ten longest holds', () => {
    const c = clock();
    const holds = new TopicHolds({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 }, () => c.now);
    const waitedFor = (ms: number) => new Date(c.now - ms);
    expect(holds.parkDelayMs(null)).toBe(30_000); // never failed before
    expect(holds.parkDelayMs(waitedFor(5000))).toBe(30_000);
    expect(holds.parkDelayMs(waitedFor(120_000))).toBe(120_000);
    expect(holds.parkDelayMs(waitedFor(3_600_000))).toBe(300_000);
  });
});

describe('OutboxRelayOptions.missingTopicHold', () => {
  const base = { connectionString: 'postgres://x@127.0.0.1/db', brokers: ['127.0.0.1:9092'] };

  it('defaults to 1 s doubling to 30 s', () => {
    expect(resolveRelayOptions(base).topicHoldTiming).toEqual({ initialMs: 1000, maxMs: 30_000, alertAfterMs: 300_000 });
    expect(resolveRelayOptions({ ...base, missingTopicHold: { initialMs: 200 } }).topicHoldTiming).toEqual({
      initialMs: 200,
      maxMs: 30_000,
      alertAfterMs: 300_000,
    });
  });

  it('refuses a longest hold shorter than the first, with a typed error naming the setting', () => {
    const attempt = () => resolveRelayOptions({ ...base, missingTopicHold: { initialMs: 5000, maxMs: 1000 } });
    expect(attempt).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    expect(attempt).toThrow(/missingTopicHold.maxMs: expected an integer from initialMs \(5000\) to 600000, got 1000/);
    expect(() => resolveRelayOptions({ ...base, missingTopicHold: { initialMs: 0 } })).toThrow(/missingTopicHold.initialMs/);
    expect(() => resolveRelayOptions({ ...base, missingTopicHold: { alertAfterMs: 50 } })).toThrow(
      /missingTopicHold.alertAfterMs: expected an integer from 100/,
    );
  });
});
