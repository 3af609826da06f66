export * as tables from './tables.js';
export { eventLog, outbox, deadLetters, inbox, relayInstances, dlqMirrorPositions, deadLettersUnstorable, eventbus } from './tables.js';
export { checkDatabase, runMigrations, pendingMigrations, migrationsFolder, type MigrateOptions } from './migrate.js';
export { SHARD_COUNT, SHARD_LOCK_NAMESPACE, SLEEP_LOCK_NAMESPACE, MIGRATION_LOCK_NAMESPACE, shardForTenant } from './shards.js';
export { inTransaction } from './transaction.js';
