import { describe, expect, it } from 'vitest';
import { dateFlag, durationFlag, intFlag, listFlag, positiveNumberFlag } from './args.js';
import { describeFailure, CliError } from './cli-error.js';
import { ProgressBar, renderProgress } from './progress-bar.js';
import { formatDuration, formatTable } from './table.js';
import { EventBusError } from '@eventbus/core';
import { packTenants } from './commands/prune.js';

describe('flag parsing', () => {
  it('dates: ISO 8601 only, zone-less means UTC', () => {
    expect(dateFlag('from', '2026-01-31')?.toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(dateFlag('from', '2026-01-31T12:30')?.toISOString()).toBe('2026-01-31T12:30:00.000Z');
    expect(dateFlag('from', '2026-01-31T12:30:00+02:00')?.toISOString()).toBe('2026-01-31T10:30:00.000Z');
    expect(dateFlag('from', undefined)).toBeUndefined();
    for (const bad of ['yesterday', '2026-13-45', '31/01/2026', "2026-01-01' OR 1=1", '1700000000']) {
      expect(() => dateFlag('from', bad)).toThrow(expect.objectContaining({ kind: 'usage' }));
    }
  });
  it('durations, integers, rates and lists', () => {
    expect(durationFlag('window', '15m', 3600)).toBe(900);
    expect(durationFlag('window', undefined, 3600)).toBe(3600);
    expect(() => durationFlag('window', '5x', 1)).toThrow(/15m, 1h or 7d/);
    expect(() => durationFlag('window', '400d', 1)).toThrow(/--window "400d" is too long: at most 366d/);
    expect(durationFlag('inbox-older-than', '730d', 0, 36_500 * 86_400)).toBe(730 * 86_400);
    expect(() => durationFlag('inbox-older-than', '0d', 0, 36_500 * 86_400)).toThrow(/--inbox-older-than "0d" is invalid/);
    expect(intFlag('limit', '50', 1, 100)).toBe(50);
    expect(() => intFlag('limit', '0', 1, 100)).toThrow(/from 1 to 100/);
    expect(positiveNumberFlag('rate', '500/s')).toBe(500);
    expect(positiveNumberFlag('rate', '0.5')).toBe(0.5);
    expect(() => positiveNumberFlag('rate', '0')).toThrow(/events per second/);
    expect(listFlag(' product.*, ,order.placed ')).toEqual(['product.*', 'order.placed']);
  });
});

describe('describeFailure: exit codes', () => {
  it('maps errors to the documented codes', () => {
    expect(describeFailure(new CliError('usage', 'x')).exitCode).toBe(2);
    expect(describeFailure(new CliError('bad_data', 'x')).exitCode).toBe(3);
    expect(describeFailure(new EventBusError('INVALID_CONFIG', 'x')).exitCode).toBe(2);
    expect(describeFailure(new EventBusError('UNKNOWN_EVENT_ID', 'x')).exitCode).toBe(3);
    expect(describeFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).exitCode).toBe(4);
    expect(describeFailure(Object.assign(new Error('relation does not exist'), { code: '42P01' })).message).toMatch(/eventbus migrate/);
    expect(describeFailure(Object.assign(new Error('broker down'), { name: 'PublishError', kind: 'transient' })).exitCode).toBe(4);
    expect(describeFailure(new Error('boom')).exitCode).toBe(1);
  });
});

describe('output', () => {
  it('tables align and cut long cells', () => {
    expect(
      formatTable(
        ['A', 'LONG HEADER'],
        [
          ['x', 'y'],
          ['wide cell', null],
        ],
      ),
    ).toBe('A          LONG HEADER\nx          y\nwide cell  -');
    expect(formatTable(['E'], [['a'.repeat(100)]], 10).split('\n')[1]).toBe(`${'a'.repeat(9)}…`);
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(3725)).toBe('1h 2m');
  });
  it('the progress bar shows count, rate and ETA on a terminal; in a pipe, plain throttled lines', () => {
    expect(renderProgress({ sent: 1000, total: 4000, elapsedMs: 2000 }, 70)).toMatch(/^\[#+·+\] 1,000\/4,000 {2}25\.0% {2}500 ev\/s {2}ETA 6s$/);
    const written: string[] = [];
    const stream = (isTTY: boolean) =>
      Object.assign({ write: (s: string) => void written.push(s), isTTY, columns: 80 }) as unknown as NodeJS.WritableStream & { isTTY: boolean };
    const pipe = new ProgressBar(stream(false), { lineIntervalMs: 60_000 });
    pipe.update({ sent: 0, total: 4, elapsedMs: 0 }, true); // nothing sent yet: no line
    pipe.update({ sent: 1, total: 4, elapsedMs: 10 }, true);
    pipe.update({ sent: 2, total: 4, elapsedMs: 20 }, true); // within the interval: no line
    pipe.update({ sent: 4, total: 4, elapsedMs: 30 }, true); // the end: the summary says it
    pipe.finish();
    expect(written).toEqual(['progress: 1/4  25.0%  100 ev/s  ETA 0s\n']);
    written.length = 0;
    const tty = new ProgressBar(stream(true));
    tty.update({ sent: 1, total: 2, elapsedMs: 10 }, true);
    tty.finish();
    expect(written[0]).toMatch(/^\r\[/);
    expect(written[1]).toBe('\n');
    written.length = 0;
    const labelled = new ProgressBar(stream(false), { label: 'inbox', unit: 'rows' });
    labelled.update({ sent: 5000, total: 20_000, elapsedMs: 1000 });
    expect(written).toEqual(['progress (inbox): 5,000/20,000  25.0%  5,000 rows/s  ETA 3s\n']);
  });
});

describe('prune', () => {
  it('packs tenants with few old events into shared batches; a large tenant is a batch of its own', () => {
    const plan = [
      { tenantId: 'a', prunable: 3 },
      { tenantId: 'b', prunable: 0 },
      { tenantId: 'c', prunable: 4 },
      { tenantId: 'd', prunable: 1 },
      { tenantId: 'e', prunable: 12 },
      { tenantId: 'f', prunable: 2 },
    ];
    expect(packTenants(plan, 8)).toEqual([['a', 'c', 'd'], ['e'], ['f']]);
    expect(packTenants(plan, 1)).toEqual([['a'], ['c'], ['d'], ['e'], ['f']]);
    expect(packTenants([], 8)).toEqual([]);
  });
});
