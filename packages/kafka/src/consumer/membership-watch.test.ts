import { describe, expect, it } from 'vitest';
import { MembershipWatch } from './membership-watch.js';

describe('MembershipWatch', () => {
  it('expires after the limit without a heartbeat or join, and each sign starts the limit over', () => {
    let now = 1000;
    const watch = new MembershipWatch(15_000, () => now);
    now += 14_999;
    expect(watch.expired()).toBe(false);
    watch.alive();
    now += 14_999;
    expect(watch.expired()).toBe(false);
    now += 1;
    expect(watch.expired()).toBe(true);
  });
});
