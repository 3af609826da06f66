import { describe, expect, it } from 'vitest';
import { parseShardMask, shardsInMask } from './outbox-notifier.js';

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

  it('lists the shards a mask names, shard 0 and 63 included', () => {
    expect(shardsInMask((1n << 5n) | (1n << 63n))).toEqual([5, 63]);
    expect(shardsInMask(parseShardMask('ffffffffffffffff')!)).toEqual(Array.from({ length: 64 }, (_, i) => i));
    expect(shardsInMask(1n)).toEqual([0]);
    expect(shardsInMask(0b1010n)).toEqual([1, 3]);
    expect(shardsInMask(-1n)).toEqual(Array.from({ length: 64 }, (_, i) => i)); // never loops forever on a negative
    expect(shardsInMask(0n)).toEqual([]);
  });
});
