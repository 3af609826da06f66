/**
 * Tenants hash into a fixed number of shards. A relay instance publishes a shard only while
 * it holds that shard's advisory lock, so each tenant is published by one instance at a
 * time and its order survives several instances. The count is fixed: changing it would
 * move tenants between shards while rows are pending.
 */
export const SHARD_COUNT = 64;

/** Namespace (first key) of the relay's shard advisory locks: pg_try_advisory_lock(ns, shard). */
export const SHARD_LOCK_NAMESPACE = 0x0e7b05;
/**
 * Namespace of the relay lanes' sleep locks: a lane holds (ns, shard) while it waits for a
 * notification on that shard, and the outbox trigger (drizzle/0006) notifies only then.
 */
export const SLEEP_LOCK_NAMESPACE = 0x0e7b07;
/** Key of the advisory lock that serialises migrations: pg_advisory_lock(ns, 0). */
export const MIGRATION_LOCK_NAMESPACE = 0x0e7b06;

/** Stable shard of a tenant: FNV-1a over the UTF-8 bytes, modulo SHARD_COUNT. */
export function shardForTenant(tenantId: string): number {
  let hash = 0x811c9dc5;
  const bytes = Buffer.from(tenantId, 'utf8');
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % SHARD_COUNT;
}
