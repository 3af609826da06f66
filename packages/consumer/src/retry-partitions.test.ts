import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_CONFIG } from '@eventbus/core';
import { RetryPartitions, retryPartition } from './retry-partitions.js';

describe('RetryPartitions', () => {
  it('gives each retry delay partitions of its own, and a key the same one each time', () => {
    const layout = new RetryPartitions(DEFAULT_RETRY_CONFIG);
    expect(layout.delays).toEqual([1000, 2000, 4000, 8000, 16000]);
    const keys = Array.from({ length: 50 }, (_, i) => `tenant-${i}`);
    const used = layout.delays.map((delay) => new Set(keys.map((key) => layout.chooser(delay, key)(12))));
    // 12 partitions for 5 delays: 2 each (0-1, 2-3, …, 8-9); none shared between delays.
    expect(used.map((s) => [...s].sort((a, b) => a - b))).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
      [8, 9],
    ]);
    expect(layout.chooser(4000, 'tenant-7')(12)).toBe(layout.chooser(4000, Buffer.from('tenant-7'))(12));
  });

  it('shares partitions between delays when there are fewer partitions than delays', () => {
    const layout = new RetryPartitions(DEFAULT_RETRY_CONFIG);
    expect(layout.delays.map((delay) => layout.chooser(delay, 'k')(3))).toEqual([0, 1, 2, 0, 1]);
    expect(layout.chooser(16000, 'k')(1)).toBe(0);
  });

  it('has one delay for a constant backoff, and one per distinct value once capped', () => {
    expect(new RetryPartitions({ maxRetries: 10, initialDelayMs: 500, maxDelayMs: 500, backoffMultiplier: 2 }).delays).toEqual([500]);
    expect(new RetryPartitions({ maxRetries: 10, initialDelayMs: 1000, maxDelayMs: 5000, backoffMultiplier: 2 }).delays).toEqual([1000, 2000, 4000, 5000]);
    expect(new RetryPartitions({ ...DEFAULT_RETRY_CONFIG, maxRetries: 0 }).delays).toEqual([]);
  });

  it('stays within the topic', () => {
    for (let count = 1; count <= 40; count++)
      for (let tier = 0; tier < 7; tier++)
        for (const hash of [0, 1, 7, 2 ** 32 - 1]) {
          const p = retryPartition(tier, 7, hash, count);
          expect(p).toBeGreaterThanOrEqual(0);
          expect(p).toBeLessThan(count);
        }
  });
});
