// eventbus.event_log: the producer's insert, replay's page reads, a dead letter's replay window, the audit's copies, the prune.
export {
  insertEventsQuery,
  findOriginalsQuery,
  INSERT_EVENTS_STATEMENT_NAME,
  type Query,
  type NewEventRow,
  type InsertRow,
  type OriginalRow,
} from './event-log/insert-events.js';
export {
  readEventPage,
  startCursor,
  toDateBound,
  READ_EVENT_PAGE_SQL,
  READ_EVENT_PAGE_BY_IDS_SQL,
  type EventLogCursor,
  type EventLogFilter,
  type ReplayedRow,
} from './event-log/read-event-page.js';
export { countMatchingEvents, COUNT_MATCHING_EVENTS_SQL, COUNT_MATCHING_EVENTS_BY_IDS_SQL } from './event-log/count-matching-events.js';
export { findEventCursor, FIND_EVENT_CURSOR_SQL } from './event-log/find-event-cursor.js';
export { findEventIds, FIND_EVENT_IDS_SQL } from './event-log/find-event-ids.js';
export { findEventReplayWindow, FIND_EVENT_REPLAY_WINDOW_SQL, type EventReplayWindow } from './event-log/find-event-replay-window.js';
export {
  eventLogTenants,
  countOldEvents,
  deleteOldEvents,
  type PendingDeadLetterCondition,
  type TenantEventCounts,
} from './event-log/prune-event-log.js';
export { copyEventLogWindow, copyEventLogByIds, type EventLogWindow } from './event-log/audit-event-log.js';
export { eventFlow, type EventFlow } from './event-log/event-flow.js';
export { EVENT_LOG_PAYLOAD_SQL } from './event-log/event-log-payload.js';

// eventbus.outbox: the relay's claim and retry, the re-drive's requeue, backlog and shards, the audit's copy.
export { claimBatch, CLAIM_BATCH_SQL, CLAIM_SESSION_SQL, type ClaimedRow } from './outbox/claim-batch.js';
export { returnForRetry, RETURN_FOR_RETRY_SQL, type RetryRow } from './outbox/return-for-retry.js';
export { requeueEvent, REQUEUE_EVENT_SQL } from './outbox/requeue-event.js';
export { outboxBacklog, type OutboxBacklog } from './outbox/outbox-backlog.js';
export { outboxShards, type ShardStatus } from './outbox/outbox-shards.js';
export { copyPendingOutbox } from './outbox/audit-pending-outbox.js';
