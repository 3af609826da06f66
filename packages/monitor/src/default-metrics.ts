import { EventMetrics, type EventBusStats, type EventMetric } from './event-metrics.js';

// Created on first use, so importing the package costs nothing until something records.
let shared: EventMetrics | undefined;

function sharedMetrics(): EventMetrics {
  return (shared ??= new EventMetrics());
}

/** Records into the process-wide EventMetrics (default tiers, Date.now clock). */
export function recordEventMetric(metric: EventMetric): void {
  sharedMetrics().record(metric);
}

/** Stats of the process-wide EventMetrics over the last `windowMs` (max 24 h). */
export function getEventBusStats(windowMs: number, now?: number): EventBusStats {
  return sharedMetrics().stats(windowMs, now);
}

/** Forgets everything the process-wide EventMetrics recorded; its DLQ size provider stays. */
export function resetEventMetrics(): void {
  shared?.reset();
}

/** Lets the process report the real DLQ size through `getEventBusStats().dlqSize`; `undefined` unsets it. */
export function setDlqSizeProvider(provider: (() => number) | undefined): void {
  sharedMetrics().setDlqSizeProvider(provider);
}
