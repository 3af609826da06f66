/**
 * `value` as one POSIX shell word, for the commands the event bus prints to be pasted into a
 * shell (re-drives, replays, a replay's resume): as it is when it needs no quotes, else in
 * single quotes, since a tenant id, group id or argument may hold `$`, quotes or backticks.
 * `always`: quoted even then (an event type pattern whose `*` the shell must not expand).
 */
export function shellQuote(value: string, { always = false }: { always?: boolean } = {}): string {
  return !always && /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}
