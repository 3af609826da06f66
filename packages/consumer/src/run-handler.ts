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
 */
export async function runHandler(call: (signal: AbortSignal) => Promise<void>, options: RunHandlerOptions): Promise<HandlerOutcome> {
  const controller = new AbortController();
  const onStop = () => controller.abort(new EventBusError('STOPPED', 'the consumer is stopping and its grace period expired', { retriable: true }));
  if (options.stopSignal.aborted) onStop();
  options.stopSignal.addEventListener('abort', onStop, { once: true });
  const timer = setTimeout(
    () => controller.abort(new EventBusError('HANDLER_TIMEOUT', `the handler did not finish within ${options.timeoutMs} ms`, { retriable: true })),
    options.timeoutMs,
  );
  const beat = setInterval(() => void options.heartbeat().catch(() => undefined), options.heartbeatEveryMs);
  const aborted = new Promise<never>((_, reject) => {
    const fail = () => reject(controller.signal.reason);
    if (controller.signal.aborted) fail();
    else controller.signal.addEventListener('abort', fail, { once: true });
  });
  try {
    await Promise.race([Promise.resolve().then(() => call(controller.signal)), aborted]);
    return { ok: true };
  } catch (error) {
    return { ok: false, error, interrupted: options.stopSignal.aborted };
  } finally {
    clearTimeout(timer);
    clearInterval(beat);
    options.stopSignal.removeEventListener('abort', onStop);
  }
}
