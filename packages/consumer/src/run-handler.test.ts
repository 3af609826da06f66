import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runHandler } from './run-handler.js';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

const options = (over: Partial<Parameters<typeof runHandler>[1]> = {}) => ({
  timeoutMs: 1000,
  stopSignal: new AbortController().signal,
  heartbeat: vi.fn(async () => undefined),
  heartbeatEveryMs: 300,
  ...over,
});

describe('runHandler', () => {
  it('reports success, a rejection and a synchronous throw', async () => {
    expect(await runHandler(async () => undefined, options())).toEqual({ ok: true });
    const boom = new Error('boom');
    expect(await runHandler(async () => Promise.reject(boom), options())).toEqual({ ok: false, error: boom, interrupted: false });
    expect(
      await runHandler(() => {
        throw boom;
      }, options()),
    ).toEqual({ ok: false, error: boom, interrupted: false });
  });

  it('heartbeats while a long handler runs, then times it out and aborts its signal', async () => {
    const o = options();
    let signal: AbortSignal | undefined;
    const outcome = runHandler((s) => {
      signal = s;
      return new Promise(() => {}); // never settles, ignores its signal
    }, o);
    await vi.advanceTimersByTimeAsync(950);
    expect(o.heartbeat).toHaveBeenCalledTimes(3); // at 300, 600, 900 ms
    expect(signal!.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    const result = await outcome;
    expect(result).toMatchObject({ ok: false, interrupted: false, error: { code: 'HANDLER_TIMEOUT' } });
    expect(signal!.aborted).toBe(true);
  });

  it('ends a running handler as interrupted when stop()’s grace period expires, and does not call one when it already has', async () => {
    const stop = new AbortController();
    const outcome = runHandler(() => new Promise(() => {}), options({ stopSignal: stop.signal }));
    stop.abort();
    expect(await outcome).toMatchObject({ ok: false, interrupted: true, error: { code: 'STOPPED' } });
    const handler = vi.fn(async () => undefined);
    expect(await runHandler(handler, options({ stopSignal: stop.signal }))).toMatchObject({ ok: false, interrupted: true });
    expect(handler).not.toHaveBeenCalled();
  });

  it('on stop, interrupts exactly the calls still running, whichever finished before in whatever order', async () => {
    const stop = new AbortController();
    const o = options({ stopSignal: stop.signal });
    const finishers: Array<() => void> = [];
    const outcomes = Array.from({ length: 5 }, () => runHandler(() => new Promise<void>((resolve) => finishers.push(resolve)), o));
    // The first, a middle one and the last to start finish; the second and fourth are still running.
    for (const i of [0, 2, 4]) finishers[i]!();
    await Promise.all([outcomes[0], outcomes[2], outcomes[4]]);
    stop.abort();
    const results = await Promise.all(outcomes);
    expect(results.map((r) => (r.ok ? 'ok' : r.interrupted ? 'interrupted' : 'failed'))).toEqual(['ok', 'interrupted', 'ok', 'interrupted', 'ok']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends no heartbeat for a call that finished, and leaves no timer behind once its heartbeat would have been due', async () => {
    const o = options();
    await runHandler(async () => undefined, o);
    await vi.advanceTimersByTimeAsync(300);
    expect(o.heartbeat).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('serves the calls of one stop signal with one timer, each heartbeating and timing out on its own schedule', async () => {
    const o = options();
    const first = runHandler(() => new Promise(() => {}), o); // due at 300, 600, 900; times out at 1000
    await vi.advanceTimersByTimeAsync(100);
    const second = { ...o, heartbeat: vi.fn(async () => undefined) };
    let finishSecond!: () => void;
    const secondOutcome = runHandler(() => new Promise<void>((resolve) => (finishSecond = resolve)), second); // due at 400, 700
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(650); // 750
    expect(o.heartbeat).toHaveBeenCalledTimes(2);
    expect(second.heartbeat).toHaveBeenCalledTimes(2);
    finishSecond();
    expect(await secondOutcome).toEqual({ ok: true });
    await vi.advanceTimersByTimeAsync(249); // 999
    expect(o.heartbeat).toHaveBeenCalledTimes(3);
    expect(second.heartbeat).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(await first).toMatchObject({ ok: false, error: { code: 'HANDLER_TIMEOUT' } });
    expect(vi.getTimerCount()).toBe(0);
  });
});
