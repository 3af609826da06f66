// Which lines a chart of many keyed series draws (64 shards, every partition of a group), so
// that it stays legible: pure functions, no DOM (unit-tested in src/chart-series.test.ts).

/** Lines per chart at most; the rest are summed into one "other" line. */
export const MAX_LINES = 8;
/** Distinct colours for up to MAX_LINES lines, and the grey of "other". */
const PALETTE = ['#2457c5', '#c26a00', '#177245', '#b42318', '#6941c6', '#0e7490', '#a1246d', '#5f6b00'];
const OTHER_COLOR = '#8a8f98';

const byKey = (a, b) => a.localeCompare(b, 'en', { numeric: true });

/**
 * `samples`: [{ t: seconds, values: { key: number } | null }], oldest first. A key absent from
 * a sample was 0 then (a shard without outbox rows is not listed); `values: null` is a sample
 * without a reading (Kafka unreachable): a gap in every line.
 *
 * Lines: each key above 0 at some point in the samples; of those the `max` with the highest
 * peak, in key order (coloured by that order), and the others summed as `other` (its label
 * carries no count, so the set of lines, which rebuilds the chart, changes only when a key
 * enters or leaves the top). With no key above 0: one flat line named `empty`.
 */
export function keyedLines(samples, { label = (key) => key, other = 'other', empty = 'none', max = MAX_LINES } = {}) {
  const peaks = new Map();
  for (const s of samples) {
    if (!s.values) continue;
    for (const [key, v] of Object.entries(s.values)) if (v > 0 && v > (peaks.get(key) ?? 0)) peaks.set(key, v);
  }
  const ranked = [...peaks.keys()].sort((a, b) => peaks.get(b) - peaks.get(a) || byKey(a, b));
  const shown = ranked.slice(0, max).sort(byKey);
  const rest = ranked.slice(max);
  const at = (s, key) => (s.values ? (s.values[key] ?? 0) : null);
  const series = shown.map((key, i) => ({ label: label(key), color: PALETTE[i % PALETTE.length] }));
  const data = [samples.map((s) => s.t), ...shown.map((key) => samples.map((s) => at(s, key)))];
  if (rest.length > 0) {
    series.push({ label: other, color: OTHER_COLOR });
    data.push(samples.map((s) => (s.values ? rest.reduce((sum, key) => sum + (s.values[key] ?? 0), 0) : null)));
  }
  if (series.length === 0) {
    series.push({ label: empty, color: OTHER_COLOR });
    data.push(samples.map((s) => (s.values ? 0 : null)));
  }
  return { series, data };
}
