import { describe, expect, it } from 'vitest';
import type { BatchControl } from '@eventbus/kafka';
import { AcknowledgedOffsets } from './acknowledged-offsets.js';

function control() {
  const resolved: string[] = [];
  const c: BatchControl = {
    heartbeat: async () => undefined,
    resolveOffset: (offset) => void resolved.push(offset),
    isRunning: () => true,
    isStale: () => false,
    pause: () => () => undefined,
    hold: () => undefined,
    detach: () => undefined,
  };
  return { c, resolved };
}

describe('AcknowledgedOffsets', () => {
  it('resolves messages without copies at once while nothing waits before them', () => {
    const { c, resolved } = control();
    const offsets = new AcknowledgedOffsets(c);
    offsets.finished('0');
    offsets.finished('1');
    expect(resolved).toEqual(['0', '1']);
  });

  it('holds a message with a copy, and every later one, until the copy is acknowledged', async () => {
    const { c, resolved } = control();
    const offsets = new AcknowledgedOffsets(c);
    let acknowledge!: () => void;
    offsets.finished('0');
    offsets.finished('1', new Promise<void>((r) => (acknowledge = r)));
    offsets.finished('2');
    expect(resolved).toEqual(['0']);
    const settled = offsets.settle();
    await new Promise((r) => setImmediate(r));
    expect(resolved).toEqual(['0']);
    acknowledge();
    await settled;
    expect(resolved).toEqual(['0', '1', '2']);
  });

  it('leaves a failed copy and everything after it unresolved, and rejects', async () => {
    const { c, resolved } = control();
    const offsets = new AcknowledgedOffsets(c);
    offsets.finished('0', Promise.resolve());
    offsets.finished('1', Promise.reject(new Error('copy refused')));
    offsets.finished('2', Promise.resolve());
    await expect(offsets.settle()).rejects.toThrow('copy refused');
    expect(resolved).toEqual(['0']);
  });
});
