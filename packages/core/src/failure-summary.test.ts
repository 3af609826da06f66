import { describe, expect, it } from 'vitest';
import { summarizeFailures } from './failure-summary.js';

describe('summarizeFailures', () => {
  it('writes one line per distinct error with the count and the first ten ids', () => {
    const tooLarge = Array.from({ length: 25 }, (_, i) => ({
      eventId: `e${i}`,
      tenantId: i < 20 ? 'big' : 'other',
      eventType: 'blob.stored',
      attempts: 1 + (i % 3),
      retryInMs: 100 * (1 + (i % 3)),
      err: 'message too large for topic t (max.message.bytes)',
    }));
    const gone = { eventId: 'g1', tenantId: 'gone', eventType: 'x.y', attempts: 6, err: 'topic u does not exist' };
    const lines = summarizeFailures([...tooLarge, gone]);
    expect(lines).toEqual([
      {
        events: 25,
        eventIds: tooLarge.slice(0, 10).map((r) => r.eventId),
        tenantIds: ['big', 'other'],
        eventTypes: ['blob.stored'],
        attempts: 3,
        retryInMs: 100,
        err: 'message too large for topic t (max.message.bytes)',
      },
      { events: 1, eventIds: ['g1'], tenantIds: ['gone'], eventTypes: ['x.y'], attempts: 6, err: 'topic u does not exist' },
    ]);
  });

  it('writes nothing for no refusals', () => {
    expect(summarizeFailures([])).toEqual([]);
  });
});
