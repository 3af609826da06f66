import { describe, expect, it } from 'vitest';
import { BIN_VALUES, LATENCY_BIN_COUNT, MAX_TRACKED_LATENCY_MS, OVERFLOW_BIN, latencyBin } from './latency-bins.js';

describe('latency bins', () => {
  it('are exact for whole milliseconds below 128', () => {
    for (let ms = 0; ms < 128; ms++) expect(BIN_VALUES[latencyBin(ms)]).toBe(ms);
  });

  it('report every whole millisecond up to the tracked maximum within 1/128 of it, in order', () => {
    // Exhaustive over the 4.2 million whole-ms values: the claim holds for every one, not a sample.
    let previousBin = -1;
    let worst = 0;
    for (let ms = 0; ms < MAX_TRACKED_LATENCY_MS; ms++) {
      const bin = latencyBin(ms);
      if (bin < previousBin || bin > previousBin + 1) throw new Error(`bin ${bin} after ${previousBin} at ${ms} ms`);
      previousBin = bin;
      if (ms > 0) worst = Math.max(worst, Math.abs(BIN_VALUES[bin]! - ms) / ms);
    }
    expect(previousBin).toBe(OVERFLOW_BIN - 1);
    expect(worst).toBeLessThan(1 / 128);
    // Not far below it either: bins are as wide as the documented resolution allows, not narrower.
    expect(worst).toBeGreaterThan(1 / 140);
  });

  it('report fractional latencies within max(0.5 ms, 0.8 %)', () => {
    for (const latencyMs of [0, 0.2, 0.49, 0.5, 0.51, 3.7, 127.49, 127.5, 128.3, 255.9, 1000.25, 65_535.5, 4_194_303.4]) {
      const error = Math.abs(BIN_VALUES[latencyBin(latencyMs)]! - latencyMs);
      expect(error, `${latencyMs} ms`).toBeLessThanOrEqual(Math.max(0.5, 0.008 * latencyMs));
    }
  });

  it('send latencies from the tracked maximum up to the overflow bin', () => {
    expect(latencyBin(MAX_TRACKED_LATENCY_MS - 0.6)).toBe(OVERFLOW_BIN - 1);
    expect(latencyBin(MAX_TRACKED_LATENCY_MS - 0.5)).toBe(OVERFLOW_BIN);
    expect(latencyBin(MAX_TRACKED_LATENCY_MS * 1000)).toBe(OVERFLOW_BIN);
    expect(latencyBin(Number.MAX_VALUE)).toBe(OVERFLOW_BIN);
    expect(LATENCY_BIN_COUNT).toBe(OVERFLOW_BIN + 1);
  });
});
