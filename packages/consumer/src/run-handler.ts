import { EventBusError } from '@eventbus/core';

/** How one handler call ended. `interrupted`: stop()'s grace period expired while it ran. */
export type HandlerOutcome = { ok: true } | { ok: false; error: unknown; interrupted: boolean };

/** Every successful call's outcome: one object, not one per call. */
const SUCCEEDED: HandlerOutcome = Object.freeze({ ok: true });

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
 * This runs once per message, so a call costs one promise around it and a node in its stop
 * signal's list of calls in flight, which one listener and one timer serve for every call
 * (CallsInFlight): with a no-op handler, a timer and an abort listener per call, let alone
 * separate timeout and heartbeat timers and a Promise.race, cost a visible share of consumer
 * throughput (`pnpm bench --only consumer`).
 */
export function runHandler(call: (signal: AbortSignal) => Promise<void>, options: RunHandlerOptions): Promise<HandlerOutcome> {
  const controller = new AbortController();
  const { stopSignal, timeoutMs, heartbeatEveryMs } = options;
  const startedAt = Date.now();
  return new Promise<HandlerOutcome>((resolve) => {
    let inFlight: InFlightCall | undefined;
    const finish = (outcome: HandlerOutcome) => {
      if (!inFlight) return;
      inFlight.calls.remove(inFlight);
      inFlight = undefined;
      resolve(outcome);
    };
    const fail = (reason: unknown) => {
      controller.abort(reason);
      finish({ ok: false, error: reason, interrupted: stopSignal.aborted });
    };
    const onStop = () => fail(stopped());
    // Due at the next heartbeat or at the deadline, whichever comes first.
    const onDue = (now: number) => {
      const elapsed = now - startedAt;
      if (elapsed >= timeoutMs) {
        fail(new EventBusError('HANDLER_TIMEOUT', `the handler did not finish within ${timeoutMs} ms`, { retriable: true }));
        return undefined;
      }
      void options.heartbeat().catch(() => undefined);
      return now + Math.min(heartbeatEveryMs, timeoutMs - elapsed);
    };
    if (stopSignal.aborted) return resolve({ ok: false, error: stopped(), interrupted: true });
    inFlight = callsInFlight(stopSignal).add(startedAt + Math.min(heartbeatEveryMs, timeoutMs), onDue, onStop);
    let pending: Promise<void>;
    try {
      pending = call(controller.signal);
    } catch (error) {
      // A handler that throws synchronously fails like one that rejects.
      return finish({ ok: false, error, interrupted: stopSignal.aborted });
    }
    Promise.resolve(pending).then(
      () => finish(SUCCEEDED),
      (error: unknown) => finish({ ok: false, error, interrupted: stopSignal.aborted }),
    );
  });
}

function stopped(): EventBusError {
  return new EventBusError('STOPPED', 'the consumer is stopping and its grace period expired', { retriable: true });
}

/** A handler call in flight: a node of its stop signal's list. */
interface InFlightCall {
  readonly calls: CallsInFlight;
  /** When the call next heartbeats or times out (ms since the epoch). */
  dueAt: number;
  /** Heartbeats or times the call out at `now`; returns when it is due next, undefined when it ended. */
  readonly onDue: (now: number) => number | undefined;
  /** The stop signal aborted. */
  readonly onStop: () => void;
  linked: boolean;
  prev: InFlightCall | undefined;
  next: InFlightCall | undefined;
}

/**
 * The handler calls in flight on one stop signal: one abort listener and one timer serve them
 * all. The timer is armed for the earliest due call; a call ending leaves it as it is (it fires,
 * finds nothing due and is not armed again), so a stream of short calls arms it about once per
 * heartbeat interval instead of setting and clearing a timer each. The calls are a linked list,
 * not a Set: a Set that gains and loses an entry per call is rehashed every few calls.
 */
class CallsInFlight {
  private head: InFlightCall | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires; Infinity when none is armed. */
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(signal: AbortSignal) {
    signal.addEventListener('abort', () => this.stopAll(), { once: true });
  }

  add(dueAt: number, onDue: InFlightCall['onDue'], onStop: () => void): InFlightCall {
    const call: InFlightCall = { calls: this, dueAt, onDue, onStop, linked: true, prev: undefined, next: this.head };
    if (this.head) this.head.prev = call;
    this.head = call;
    if (dueAt < this.timerAt) this.arm(dueAt);
    return call;
  }

  /** Unlinks a call that ended; harmless when it was unlinked already. */
  remove(call: InFlightCall): void {
    if (!call.linked) return;
    call.linked = false;
    const { prev, next } = call;
    if (prev) prev.next = next;
    else this.head = next;
    if (next) next.prev = prev;
    call.prev = undefined;
    call.next = undefined;
  }

  private arm(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
    // Not what keeps a process alive: that is the consumer's connections (or the handler's own work).
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    let nextDue = Number.POSITIVE_INFINITY;
    for (let call = this.head; call; ) {
      const following = call.next; // onDue may end the call, which unlinks it
      if (call.dueAt <= now) {
        const due = call.onDue(now);
        if (due !== undefined) call.dueAt = due;
      }
      if (call.linked && call.dueAt < nextDue) nextDue = call.dueAt;
      call = following;
    }
    if (nextDue < this.timerAt) this.arm(nextDue);
  }

  private stopAll(): void {
    clearTimeout(this.timer);
    this.timerAt = Number.POSITIVE_INFINITY;
    for (let call = this.head; call; ) {
      const following = call.next;
      call.onStop(); // ends the call, which unlinks it
      call = following;
    }
  }
}

const inFlightBySignal = new WeakMap<AbortSignal, CallsInFlight>();

function callsInFlight(signal: AbortSignal): CallsInFlight {
  let calls = inFlightBySignal.get(signal);
  if (!calls) {
    calls = new CallsInFlight(signal);
    inFlightBySignal.set(signal, calls);
  }
  return calls;
}
