import { describe, expect, it } from 'vitest';
import { stalls, summarizeStalls, type ProgressSample } from './publish-progress.js';

const at = (atMs: number, published: number, pending: number): ProgressSample => ({ atMs, published, pending });

describe('publish stalls', () => {
  it('measures from the last progress to the next while events wait (one sampling interval at least)', () => {
    const samples = [at(0, 10, 5), at(100, 20, 5), at(200, 20, 8), at(300, 20, 9), at(1300, 20, 30), at(1400, 50, 2), at(1500, 52, 0)];
    expect(stalls(samples).map((s) => [s.fromMs, s.toMs])).toEqual([
      [0, 100],
      [100, 1400],
      [1400, 1500],
    ]);
  });

  it('does not count an empty outbox as a stall', () => {
    const samples = [at(0, 10, 0), at(5000, 10, 0), at(5100, 10, 3), at(5200, 13, 0)];
    expect(stalls(samples)).toEqual([{ fromMs: 5100, toMs: 5200, ms: 100 }]);
  });

  it('ends a stall still open at the last sample there', () => {
    expect(stalls([at(0, 1, 4), at(100, 2, 4), at(900, 2, 4)])).toEqual([
      { fromMs: 0, toMs: 100, ms: 100 },
      { fromMs: 100, toMs: 900, ms: 800 },
    ]);
  });

  it('gives the longest stall overall and the longest overlapping each fault, relative to its start', () => {
    const samples = [at(0, 0, 5), at(100, 10, 5), at(9100, 20, 5), at(9200, 30, 5), at(20_000, 30, 5), at(20_500, 40, 0)];
    const summary = summarizeStalls(samples, [
      { kind: 'broker SIGKILL', atMs: 50, endMs: 15_000, detail: 'node 2' },
      { kind: 'other', atMs: 30_000, endMs: 31_000 },
    ]);
    expect(summary.maxMs).toBe(11_300);
    expect(summary.byFault).toEqual([
      { kind: 'broker SIGKILL', detail: 'node 2', stallMs: 11_300, startsAfterFaultMs: 9150 },
      { kind: 'other', stallMs: 0, startsAfterFaultMs: 0 },
    ]);
  });
});
