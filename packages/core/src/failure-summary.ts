/** One event that failed, as a log line of the relay or a consumer counts it. */
export interface FailedEvent {
  eventId: string;
  tenantId: string;
  eventType: string;
  attempts: number;
  /** The backoff before the next try; absent for an event dead-lettered. */
  retryInMs?: number;
  err: string;
}

/** How many ids a log line names; the count says how many there were. */
const NAMED = 10;

/**
 * The log lines for a batch's failures: one per distinct error, with how many events it hit and
 * the first few event and tenant ids. A tenant whose every event fails sends hundreds of them a
 * second through here; a line per event buried everything else in the log (and the DLQ table
 * keeps every event's detail: `eventbus dlq list`).
 */
export function summarizeFailures(refusals: readonly FailedEvent[]): Array<Record<string, unknown>> {
  const byError = new Map<string, FailedEvent[]>();
  for (const r of refusals) {
    const same = byError.get(r.err);
    if (same) same.push(r);
    else byError.set(r.err, [r]);
  }
  return [...byError].map(([err, rows]) => {
    const retryIn = rows.flatMap((r) => (r.retryInMs === undefined ? [] : [r.retryInMs]));
    return {
      events: rows.length,
      eventIds: rows.slice(0, NAMED).map((r) => r.eventId),
      tenantIds: [...new Set(rows.map((r) => r.tenantId))].slice(0, NAMED),
      eventTypes: [...new Set(rows.map((r) => r.eventType))].slice(0, NAMED),
      attempts: Math.max(...rows.map((r) => r.attempts)),
      ...(retryIn.length > 0 ? { retryInMs: Math.min(...retryIn) } : {}),
      err,
    };
  });
}
