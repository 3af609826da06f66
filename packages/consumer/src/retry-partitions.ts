import { backoffDelayMs, type RetryConfig } from '@eventbus/core';

/**
 * Where a retry copy goes in the group's retry topic: each retry delay has a range of
 * partitions of its own, and the copy's key picks one within the range.
 *
 * A retry message waits in its partition until it is due, and a partition is read in order. With
 * every delay in the key's partition, as the key's hash put them, a retry due in one second sat
 * behind one due in sixteen, of the same tenant or of any other that hashed there: a tenant
 * failing every event delayed every retry on its partition to the longest delay. With one delay
 * per partition, the messages of a partition fall due in the order they were written, so each is
 * handled when due.
 *
 * With fewer partitions than delays, delays share partitions (delay i goes to partition i mod
 * count) and wait behind each other again there. Copies the DLQ CLI or a replay writes to the
 * retry topic (due at once) keep the key's partition.
 */
export class RetryPartitions {
  /** The distinct delays of retries 1 … maxRetries, ascending. */
  readonly delays: readonly number[];
  private readonly tierOf = new Map<number, number>();

  constructor(config: RetryConfig) {
    const delays = new Set<number>();
    for (let retry = 1; retry <= config.maxRetries; retry++) delays.add(backoffDelayMs(config, retry));
    this.delays = [...delays].sort((a, b) => a - b);
    for (const [tier, delay] of this.delays.entries()) this.tierOf.set(delay, tier);
  }

  /** OutboundMessage.choosePartition for a copy due `delayMs` after it was written, with key `key`. */
  chooser(delayMs: number, key: string | Buffer): (partitionCount: number) => number {
    const tier = this.tierOf.get(delayMs) ?? this.delays.length - 1;
    const tiers = Math.max(1, this.delays.length);
    return (partitionCount) => retryPartition(tier, tiers, keyHash(key), partitionCount);
  }
}

/** Partition of delay number `tier` of `tiers` for a key hashing to `hash`, in a topic of `partitionCount`. */
export function retryPartition(tier: number, tiers: number, hash: number, partitionCount: number): number {
  if (partitionCount <= tiers) return tier % partitionCount;
  const width = Math.floor(partitionCount / tiers);
  return tier * width + (hash % width);
}

/** FNV-1a over the key's bytes: spreads keys over a delay's partitions (nothing else reads it). */
function keyHash(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key) : key;
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}
