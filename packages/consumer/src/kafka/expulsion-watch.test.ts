import { describe, expect, it } from 'vitest';
import { ExpulsionWatch } from './expulsion-watch.js';

const refused = (type: string) => Object.assign(new Error('The coordinator is not aware of this member'), { type });

describe('ExpulsionWatch', () => {
  it('fires once commits have been refused as from an unknown member for the limit, not before', () => {
    let now = 0;
    const watch = new ExpulsionWatch(15_000, () => now);
    for (; now < 15_000; now += 1000) expect(watch.commitFailed(refused('UNKNOWN_MEMBER_ID'))).toBe(false);
    expect(watch.commitFailed(refused('UNKNOWN_MEMBER_ID'))).toBe(true);
  });

  it('starts over after a join, and ignores failures that say nothing about membership', () => {
    let now = 0;
    const watch = new ExpulsionWatch(15_000, () => now);
    watch.commitFailed(refused('ILLEGAL_GENERATION'));
    now = 10_000;
    watch.joined();
    now = 20_000;
    expect(watch.commitFailed(refused('ILLEGAL_GENERATION'))).toBe(false); // 0 s since the join, not 20
    now = 40_000;
    expect(watch.commitFailed(new Error('Connection error: connect ECONNREFUSED'))).toBe(false);
    // Wrapped by kafkajs (retries exhausted): the cause counts.
    expect(watch.commitFailed({ message: 'retries exceeded', originalError: refused('UNKNOWN_MEMBER_ID') })).toBe(true);
  });
});
