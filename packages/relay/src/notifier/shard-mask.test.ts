import { describe, expect, it } from 'vitest';
import { maskHasAny, parseShardMask } from './outbox-notifier.js';

describe('the outbox notification payload (shard mask)', () => {
  it('reads the hex mask the trigger sends, including shard 63 (to_hex of a negative bigint)', () => {
    expect(parseShardMask('1')).toBe(1n);
    expect(parseShardMask('a')).toBe(0b1010n);
    expect(parseShardMask('8000000000000000')).toBe(1n << 63n);
    expect(parseShardMask('ffffffffffffffff')).toBe((1n << 64n) - 1n);
  });

  it('names no shard for an empty, zero or foreign payload, so every lane wakes', () => {
    for (const payload of ['', '0', 'not-a-mask', '{"shard":1}', '1ffffffffffffffff', 'ABC']) expect(parseShardMask(payload), payload).toBeUndefined();
  });

  it('matches a lane only when it holds one of the named shards', () => {
    const mask = (1n << 5n) | (1n << 63n);
    expect(maskHasAny(mask, new Set([1, 2, 5]))).toBe(true);
    expect(maskHasAny(mask, [63])).toBe(true);
    expect(maskHasAny(mask, new Set([0, 4, 6, 62]))).toBe(false);
    expect(maskHasAny(mask, [])).toBe(false);
  });
});
