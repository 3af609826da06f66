import { EventBusError } from '@eventbus/core';

/** How one handler call ended. `interrupted`: stop()'s grace period expired while it ran. */
export type HandlerOutcome = { ok: true } | { ok: false; error: unknown; interrupted: boolean };

/** What `runHandler` needs besides the call itself. */
export interface RunHandlerOptions {
  timeoutMs: number;
  /** Aborted when stop()'s grace period expires. */
  stopSignal: AbortSignal;
  /** kafkajs heartbeats only between batches; a long handler must send them itself or the group evicts the member. */
  heartbeat: () => Promise<void>;
  heartbeatEveryMs: number;
}

/**
 * Calls `call` with a signal that aborts on timeout or stop, heartbeating meanwhile. On
 * timeout it returns a HANDLER_TIMEOUT failure at once rather than waiting for a handler
 * that ignores its signal; such a handler may still be running when the next attempt starts.
 *
 * This runs once per message, so it keeps to one timer per call (it both heartbeats and
 * enforces the timeout), one promise around the call and no listener of its own on the stop
 * signal (see onAbort): with a no-op handler, separate
 * timeout and heartbeat timers plus a Promise.race cost a visible share of consumer
 * throughput (`pnpm bench --only consumer`).
 */
export function runHandler(call: (signal: AbortSignal) => Promise<void>, options: RunHandlerOptions): Promise<HandlerOutcome> {
  const controller = new AbortController();
  const { stopSignal, timeoutMs, heartbeatEveryMs } = options;
  const startedAt = Date.now();
  return new Promise<HandlerOutcome>((resolve) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let unwatch: (() => void) | undefined;
    const finish = (outcome: HandlerOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unwatch?.();
      resolve(outcome);
    };
    const fail = (reason: unknown) => {
      controller.abort(reason);
      finish({ ok: false, error: reason, interrupted: stopSignal.aborted });
    };
    function onStop() {
      fail(new EventBusError('STOPPED', 'the consumer is stopping and its grace period expired', { retriable: true }));
    }
    // One timer: it fires at the next heartbeat or at the deadline, whichever comes first.
    const tick = () => {
      const elapsed = Date.now() - startedAt;
      if (elapsed >= timeoutMs) {
        fail(new EventBusError('HANDLER_TIMEOUT', `the handler did not finish within ${timeoutMs} ms`, { retriable: true }));
        return;
      }
      void options.heartbeat().catch(() => undefined);
      timer = setTimeout(tick, Math.min(heartbeatEveryMs, timeoutMs - elapsed));
    };
    if (stopSignal.aborted) return onStop();
    unwatch = onAbort(stopSignal, onStop);
    timer = setTimeout(tick, Math.min(heartbeatEveryMs, timeoutMs));
    let pending: Promise<void>;
    try {
      pending = call(controller.signal);
    } catch (error) {
      // A handler that throws synchronously fails like one that rejects.
      return finish({ ok: false, error, interrupted: stopSignal.aborted });
    }
    Promise.resolve(pending).then(
      () => finish({ ok: true }),
      (error: unknown) => finish({ ok: false, error, interrupted: stopSignal.aborted }),
    );
  });
}

/** The callbacks waiting for each stop signal's abort, behind one listener per signal. */
const abortWatchers = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Calls `callback` when `signal` aborts; returns a function that cancels this. One listener
 * per signal serves every call: adding and removing an EventTarget listener for each handler
 * call cost about as much as the rest of runHandler (`pnpm bench --only consumer`).
 */
function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let watchers = abortWatchers.get(signal);
  if (!watchers) {
    const all = new Set<() => void>();
    watchers = all;
    abortWatchers.set(signal, all);
    signal.addEventListener(
      'abort',
      () => {
        for (const watcher of [...all]) watcher();
        all.clear();
      },
      { once: true },
    );
  }
  watchers.add(callback);
  const registered = watchers;
  return () => void registered.delete(callback);
}
