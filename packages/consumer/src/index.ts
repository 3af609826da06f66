export { EventConsumer } from './event-consumer.js';
export {
  contractSubscription,
  resolveConsumerOptions,
  resolveSubscription,
  type EventConsumerOptions,
  type ResolvedConsumerOptions,
  type ResolvedSubscription,
} from './options.js';
export { DEFAULT_TENANT_CIRCUIT, type TenantCircuitOptions } from './tenant-circuit.js';
export type { ConsumedEvent, ContractHandler, ContractSubscriptionOptions, EventHandler, HandlerContext, RetryMode, SubscriptionOptions } from './types.js';
export { defineEvent, defineCatalog, type EventContract, type EventCatalog, type ContractPayload } from '@eventbus/contracts';
export { processOnce, type InboxKey, type InboxTransaction } from './inbox.js';
// Kept for compatibility: the DLQ mirror and the re-drive/discard functions are @eventbus/dead-letters'.
export { DlqMirror, type DlqMirrorOptions, redriveDeadLetter, discardDeadLetter, type DeadLetterActionResult, consumerDedupeKey } from '@eventbus/dead-letters';
export { RETRY_HEADER, encodeRetryHeaders, decodeRetryHeaders, type RetryInfo } from '@eventbus/core';
export { DLQ_HEADER, encodeDlqHeaders, decodeDlqHeaders, type DeadLetterInfo } from '@eventbus/core';
export type { MessageOrigin } from '@eventbus/core';
export { retryTopicFor, dlqTopicFor, dlqTopicPattern, topicSafeGroupId } from '@eventbus/core';
export { silentLogger, type Logger } from '@eventbus/core';
export { NonRetriableError } from '@eventbus/core';
export { countOldInbox, inboxExtent, deleteOldInboxRange, type InboxExtent } from './sql/prune-inbox.js';
export { copyHandledEvents, groupsWithInbox, COPY_HANDLED_EVENTS_SQL } from './sql/audit-inbox.js';
