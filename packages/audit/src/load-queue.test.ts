import { describe, expect, it } from 'vitest';
import { LoadQueue } from './load-queue.js';

/** A load that finishes when the test says so. */
function gatedLoader() {
  const loaded: number[] = [];
  const gates: Array<() => void> = [];
  let started = 0;
  const load = (batch: number) =>
    new Promise<void>((resolve) => {
      started++;
      gates.push(() => {
        loaded.push(batch);
        resolve();
      });
    });
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { loaded, load, started: () => started, release: () => gates.shift()?.(), settle };
}

describe('LoadQueue', () => {
  it('returns from push while fewer than depth batches wait, and loads them in order', async () => {
    const l = gatedLoader();
    const queue = new LoadQueue(l.load, 2);
    await queue.push(1);
    await queue.push(2);
    expect(l.started()).toBe(1);
    expect(queue.size).toBe(1);
    const flushed = queue.flush();
    for (let i = 0; i < 2; i++) {
      l.release();
      await l.settle();
    }
    await flushed;
    expect(l.loaded).toEqual([1, 2]);
  });

  it('holds push back while depth batches wait, until the loader takes one (back-pressure)', async () => {
    const l = gatedLoader();
    const queue = new LoadQueue(l.load, 1);
    await queue.push(1);
    let secondReturned = false;
    const second = queue.push(2).then(() => {
      secondReturned = true;
    });
    await l.settle();
    expect(secondReturned).toBe(false);
    expect(queue.size).toBe(1);
    l.release();
    await second;
    expect(l.loaded).toEqual([1]);
    expect(queue.size).toBe(0);
    l.release();
    await queue.flush();
    expect(l.loaded).toEqual([1, 2]);
  });

  it('fails the waiting push and later pushes and flush with the loader error, dropping what waits', async () => {
    const boom = new Error('insert failed');
    let calls = 0;
    const queue = new LoadQueue<number>(async () => {
      calls++;
      await new Promise((resolve) => setImmediate(resolve));
      throw boom;
    }, 1);
    await queue.push(1);
    await expect(queue.push(2)).rejects.toBe(boom);
    await expect(queue.push(3)).rejects.toBe(boom);
    await expect(queue.flush()).rejects.toBe(boom);
    expect(calls).toBe(1);
    expect(queue.size).toBe(0);
  });

  it('starts again after it ran empty', async () => {
    const loaded: number[] = [];
    const queue = new LoadQueue<number>(async (b) => {
      loaded.push(b);
    }, 1);
    await queue.push(1);
    await queue.flush();
    await queue.push(2);
    await queue.flush();
    expect(loaded).toEqual([1, 2]);
  });

  it('refuses a depth below 1', () => {
    expect(() => new LoadQueue(async () => undefined, 0)).toThrow(RangeError);
  });
});
