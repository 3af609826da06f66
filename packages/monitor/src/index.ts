export * from './event-metrics.js';
export * from './default-metrics.js';
export { MAX_TRACKED_LATENCY_MS } from './latency-bins.js';
