export { OutboxRelay, type RelayHealth } from './outbox-relay.js';
export { resolveRelayOptions, type OutboxRelayOptions, type ResolvedRelayOptions } from './options.js';
export { RelayMetrics, Histogram, RELAY_METER } from './metrics.js';
export { observeRelayGauges, type ObservedRelay, type RelayGaugeOptions } from './relay-gauges.js';
export { deadLetterCounts, type DeadLetterCount } from '@eventbus/dead-letters';
export { silentLogger, type Logger } from '@eventbus/core';
export { OUTBOX_CHANNEL, parseShardMask, type NotifierHandlers, type OutboxNotifier } from './notifier/outbox-notifier.js';
export { PgListenNotifier } from './notifier/pg-listen-notifier.js';
export { relayInstances, type RelayInstanceRow } from './sql/relay-instances.js';
// Kept for compatibility: the outbox's and the EventLog's statements are @eventbus/outbox's.
export { outboxBacklog, outboxShards, eventFlow, type OutboxBacklog, type ShardStatus, type EventFlow } from '@eventbus/outbox';
