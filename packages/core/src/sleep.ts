/**
 * Sleeps `ms`, returning early when `signal` aborts or `wake` is called. Never rejects:
 * loops check `signal.aborted` themselves after waking.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A sleep that a notification can cut short: `wait(ms)` resolves on `wake()`, timeout or abort. */
export class Wakeup {
  private pending: (() => void) | undefined;
  private woken = false;

  /** Wakes the current waiter, or makes the next `wait` return at once. */
  wake(): void {
    this.woken = true;
    this.pending?.();
  }

  wait(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.woken || signal?.aborted) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', finish);
        this.pending = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      signal?.addEventListener('abort', finish, { once: true });
      this.pending = finish;
    });
  }
}
