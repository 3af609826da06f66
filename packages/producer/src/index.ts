export { EventWriter, type DrizzleExecutor, type EventWriterOptions } from './event-writer.js';
export { validateEvent, DEFAULT_VALIDATION_LIMITS, type ValidationLimits, type ValidatedEvent } from './validate-event.js';
export type { EventInput, WriteResult } from './types.js';
export { withCorrelationId, EventBusError, isEventBusError } from '@eventbus/core';
export { requeueEvent, REQUEUE_EVENT_SQL } from './requeue-event.js';
