export { EventWriter, type DrizzleExecutor, type EventWriterOptions } from './event-writer.js';
export { validateEvent, DEFAULT_VALIDATION_LIMITS, type ValidationLimits, type ValidatedEvent } from './validate-event.js';
export { contractEvent, type ContractEvent, type ContractEventInput, type EventInput, type WriteResult } from './types.js';
export {
  defineEvent,
  defineCatalog,
  PayloadValidationError,
  type EventContract,
  type EventCatalog,
  type ContractInput,
  type ContractPayload,
} from '@eventbus/contracts';
export { withCorrelationId, EventBusError, isEventBusError } from '@eventbus/core';
// Kept for compatibility: the outbox's statements are @eventbus/outbox's.
export { requeueEvent, REQUEUE_EVENT_SQL } from '@eventbus/outbox';
