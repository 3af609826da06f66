/** One refused row, as the relay logs it. */
export interface Refusal {
  eventId: string;
  tenantId: string;
  eventType: string;
  attempts: number;
  /** The backoff before the next try; absent for a row moved to the DLQ table. */
  retryInMs?: number;
  err: string;
}

/** How many ids a log line names; the count says how many there were. */
const NAMED = 10;

/**
 * The log lines for one claim's refusals: one per distinct error, with how many rows it hit and
 * the first few event and tenant ids. A tenant whose every row Kafka refuses sends hundreds of
 * rows a second through here; a line per row buried everything else in the relay's log (and the
 * DLQ table keeps every row's detail: `eventbus dlq list --stage relay`).
 */
export function summarizeRefusals(refusals: readonly Refusal[]): Array<Record<string, unknown>> {
  const byError = new Map<string, Refusal[]>();
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
