import { describe, expect, it } from 'vitest';
import { DetachSlots } from './detach-slots.js';

describe('DetachSlots', () => {
  it('gives at most `limit` places, passes a given-back place to the longest waiting taker, and drops an aborted taker', async () => {
    const slots = new DetachSlots(2);
    expect([slots.tryTake(), slots.tryTake(), slots.tryTake()]).toEqual([true, true, false]);
    const gone = new AbortController();
    const first = slots.take(new AbortController().signal);
    const aborted = slots.take(gone.signal);
    const second = slots.take(new AbortController().signal);
    gone.abort();
    expect(await aborted).toBe(false);
    slots.give();
    expect(await first).toBe(true);
    slots.give();
    expect(await second).toBe(true);
    expect(slots.tryTake()).toBe(false); // both places passed on, none freed
    slots.give();
    slots.give();
    expect([slots.tryTake(), slots.tryTake(), slots.tryTake()]).toEqual([true, true, false]);
  });
});
