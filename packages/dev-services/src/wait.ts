import { randomBytes } from 'node:crypto';

/** A name no other test run uses: for topics, groups and tenants. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/**
 * Polls `check` until it returns a truthy value or the deadline passes; tests wait on a
 * condition this way instead of sleeping a guessed time. A `message` that shows state (a count
 * reached so far) is a function: it is read at the timeout, where a template literal would show
 * the state when the wait began.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string | (() => string) } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const message = typeof options.message === 'function' ? options.message() : options.message;
      throw new Error(`timed out waiting for ${message ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50));
  }
}
