/**
 * Log-linear latency bins, laid out like HdrHistogram's (64 sub-bins per power of two):
 * a latency is rounded to whole milliseconds m, then
 *
 *   m < 128                    one bin per millisecond, so exact
 *   2^k <= m < 2^(k+1), k >= 7 64 bins of width 2^(k-6) ms, reported at their midpoint
 *   m >= 2^22 (about 70 min)   one overflow bin, reported as the window's maximum
 *
 * A bin is at most 1/64 of its lower edge wide, so a reported value is within
 * max(0.5 ms, 0.8 % of the true value) of it: 0.5 ms from the rounding, and half a bin
 * (1/128 of the value) from the midpoint. A fixed 1,089 bins cover 0 ms to 70 min, which is
 * what lets every time bucket hold a whole histogram in 4.4 KB.
 */

const LINEAR_BINS = 128;
const BINS_PER_OCTAVE = 64;
const FIRST_LOG_OCTAVE = 7; // log2(LINEAR_BINS)
const LAST_LOG_OCTAVE = 21;

/** Latencies from this many milliseconds up share one bin, reported as the window's maximum. */
export const MAX_TRACKED_LATENCY_MS = 2 ** (LAST_LOG_OCTAVE + 1);

/** Index of the overflow bin; the last one. */
export const OVERFLOW_BIN = LINEAR_BINS + (LAST_LOG_OCTAVE - FIRST_LOG_OCTAVE + 1) * BINS_PER_OCTAVE;

/** Bins per histogram, fixed so histograms are flat typed arrays that never grow. */
export const LATENCY_BIN_COUNT = OVERFLOW_BIN + 1;

/** The bin of a latency; `latencyMs` must already be known to be finite and >= 0. */
export function latencyBin(latencyMs: number): number {
  // Compared before rounding so `| 0` below never sees a value past 2^31.
  if (latencyMs >= MAX_TRACKED_LATENCY_MS - 0.5) return OVERFLOW_BIN;
  const ms = (latencyMs + 0.5) | 0;
  if (ms < LINEAR_BINS) return ms;
  const octave = 31 - Math.clz32(ms);
  const offsetInOctave = (ms >>> (octave - 6)) - BINS_PER_OCTAVE;
  return LINEAR_BINS + (octave - FIRST_LOG_OCTAVE) * BINS_PER_OCTAVE + offsetInOctave;
}

/** Midpoints of the whole milliseconds each bin holds, computed once; NaN for the overflow bin. */
export const BIN_VALUES: Float64Array = (() => {
  const values = new Float64Array(LATENCY_BIN_COUNT);
  for (let bin = 0; bin < OVERFLOW_BIN; bin++) {
    if (bin < LINEAR_BINS) {
      values[bin] = bin;
      continue;
    }
    const logIndex = bin - LINEAR_BINS;
    const octave = FIRST_LOG_OCTAVE + Math.floor(logIndex / BINS_PER_OCTAVE);
    const width = 2 ** (octave - 6);
    const lowest = (BINS_PER_OCTAVE + (logIndex % BINS_PER_OCTAVE)) * width;
    values[bin] = lowest + (width - 1) / 2;
  }
  values[OVERFLOW_BIN] = Number.NaN;
  return values;
})();
