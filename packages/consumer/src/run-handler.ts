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
    let watcher: AbortWatcher | undefined;
    const finish = (outcome: HandlerOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (watcher) unwatch(watcher);
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
    watcher = onAbort(stopSignal, onStop);
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

/** A callback waiting for a stop signal's abort: a node of that signal's list. */
interface AbortWatcher {
  readonly list: AbortWatchers;
  readonly callback: () => void;
  prev: AbortWatcher | undefined;
  next: AbortWatcher | undefined;
}

/** The callbacks waiting for one stop signal's abort, behind one listener on it. */
interface AbortWatchers {
  head: AbortWatcher | undefined;
}

const abortWatchers = new WeakMap<AbortSignal, AbortWatchers>();

/**
 * Calls `callback` when `signal` aborts, until `unwatch` is called with the returned watcher.
 * One listener per signal serves every call: adding and removing an EventTarget listener for
 * each handler call cost about as much as the rest of runHandler. The watchers are a linked
 * list, not a Set: a Set that gains and loses an entry per handler call is rehashed every few
 * calls, a visible share of a no-op handler's cost (`pnpm bench --only consumer`).
 */
function onAbort(signal: AbortSignal, callback: () => void): AbortWatcher {
  let list = abortWatchers.get(signal);
  if (!list) {
    const watchers: AbortWatchers = { head: undefined };
    list = watchers;
    abortWatchers.set(signal, watchers);
    signal.addEventListener(
      'abort',
      () => {
        let watcher = watchers.head;
        watchers.head = undefined;
        while (watcher) {
          const next = watcher.next;
          // Unlinked before its callback runs, so the callback's own unwatch finds nothing to do.
          watcher.prev = undefined;
          watcher.next = undefined;
          watcher.callback();
          watcher = next;
        }
      },
      { once: true },
    );
  }
  const watcher: AbortWatcher = { list, callback, prev: undefined, next: list.head };
  if (list.head) list.head.prev = watcher;
  list.head = watcher;
  return watcher;
}

/** Cancels `onAbort`; harmless when the signal already aborted or it was cancelled before. */
function unwatch(watcher: AbortWatcher): void {
  const { list, prev, next } = watcher;
  if (prev) prev.next = next;
  else if (list.head === watcher) list.head = next;
  if (next) next.prev = prev;
  watcher.prev = undefined;
  watcher.next = undefined;
}
