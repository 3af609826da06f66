import { describe, expect, it } from 'vitest';
// The page's own module (plain JavaScript served as is): the same file the browser runs.
import { keyedLines, MAX_LINES } from '../public/chart-series.mjs';

const sample = (t: number, values: Record<string, number> | null) => ({ t, values });

describe('keyedLines: the lines of a chart of many keyed series', () => {
  it('draws a line per key that was above 0, in key order, absent keys as 0', () => {
    const { series, data } = keyedLines([sample(1, { '12': 5 }), sample(2, { '3': 1, '12': 2 }), sample(3, {})], {
      label: (k: string) => `shard ${k}`,
    });
    expect(series.map((s: { label: string }) => s.label)).toEqual(['shard 3', 'shard 12']);
    expect(data).toEqual([
      [1, 2, 3],
      [0, 1, 0],
      [5, 2, 0],
    ]);
  });

  it('keeps the keys with the highest peaks and sums the others into one line', () => {
    const values = Object.fromEntries(Array.from({ length: MAX_LINES + 3 }, (_, i) => [`k${i}`, i + 1]));
    const { series, data } = keyedLines([sample(1, values)], { other: 'other shards' });
    expect(series).toHaveLength(MAX_LINES + 1);
    expect(series.at(-1).label).toBe('other shards');
    // k0, k1, k2 have the three lowest peaks (1, 2, 3): summed.
    expect(data.at(-1)).toEqual([6]);
    expect(series.map((s: { label: string }) => s.label)).not.toContain('k2');
    expect(new Set(series.slice(0, -1).map((s: { color: string }) => s.color)).size).toBe(MAX_LINES);
  });

  it('draws one flat line when no key was above 0, and gaps where a sample has no reading', () => {
    expect(keyedLines([sample(1, {}), sample(2, null)], { empty: 'no backlog' })).toEqual({
      series: [{ label: 'no backlog', color: expect.any(String) }],
      data: [
        [1, 2],
        [0, null],
      ],
    });
    expect(keyedLines([sample(1, { a: 4 }), sample(2, null)]).data).toEqual([
      [1, 2],
      [4, null],
    ]);
  });
});
