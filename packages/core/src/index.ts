export * from './errors.js';
export * from './retry.js';
export * from './event-type.js';
export * from './routing.js';
export * from './message-format.js';
export * from './trace-context.js';
export * from './sleep.js';
export * from './uuid.js';
