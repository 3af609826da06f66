import { isEventBusError } from '@eventbus/core';
import { afterEach, describe, expect, it } from 'vitest';
import { getEventBusStats, recordEventMetric, resetEventMetrics, setDlqSizeProvider } from './index.js';

// The shared instance runs on the real clock, so records are stamped relative to it.
describe('module-level API (the shared instance)', () => {
  afterEach(() => {
    resetEventMetrics();
    setDlqSizeProvider(undefined);
  });

  const record = (overrides: { timestamp: number; latencyMs?: number; status?: 'success' | 'dead_lettered' }) =>
    recordEventMetric({
      eventId: 'evt-1',
      eventType: 'order.placed',
      tenantId: 'tenant-a',
      latencyMs: 12,
      retryCount: 0,
      status: 'success',
      ...overrides,
    });

  it('records, reports over a window and resets', () => {
    const now = Date.now();
    record({ timestamp: now - 10_000, latencyMs: 40 });
    record({ timestamp: now - 5000, latencyMs: 20, status: 'dead_lettered' });
    record({ timestamp: now - 2 * 60 * 60 * 1000 }); // 2 h old

    const lastHour = getEventBusStats(60 * 60 * 1000, now);
    expect(lastHour.totalEvents).toBe(2);
    expect(lastHour.averageLatency).toBe(30);
    expect(lastHour.successRate).toBe(0.5);
    expect(lastHour.dlqSize).toBe(1);
    expect(getEventBusStats(24 * 60 * 60 * 1000, now).totalEvents).toBe(3);
    // `now` moved 10 minutes on: the 1-minute window no longer holds them.
    expect(getEventBusStats(60_000, now + 10 * 60_000).totalEvents).toBe(0);

    resetEventMetrics();
    expect(getEventBusStats(24 * 60 * 60 * 1000, now).totalEvents).toBe(0);
  });

  it('defaults `now` to the clock', () => {
    record({ timestamp: Date.now() });
    expect(getEventBusStats(60_000).totalEvents).toBe(1);
  });

  it('reports the DLQ size from the provider', () => {
    setDlqSizeProvider(() => 17);
    expect(getEventBusStats(60_000).dlqSize).toBe(17);
  });

  it('throws INVALID_EVENT on bad input', () => {
    expect(() => record({ timestamp: Date.now(), latencyMs: Number.NaN })).toThrow(expect.objectContaining({ code: 'INVALID_EVENT' }));
    let thrown: unknown;
    try {
      recordEventMetric({ timestamp: Date.now(), status: 'done' } as never);
    } catch (error) {
      thrown = error;
    }
    expect(isEventBusError(thrown, 'INVALID_EVENT')).toBe(true);
  });
});
