/**
 * Quotes a value for a POSIX shell: the re-drive commands in dead letters' errors are pasted
 * into one, and a tenant id or group id may hold `$`, quotes or backticks.
 */
export function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`;
}
