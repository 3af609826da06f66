import type { CollectedMessage } from './kafka-collector.js';

/**
 * Checks per-tenant order the way the guarantee is stated: drop duplicates by event id
 * (keeping the first delivery), then each tenant's sequence numbers must increase.
 * Returns the inversions found and the duplicate count.
 */
export function checkPerTenantOrder(messages: CollectedMessage[], seqOf: (m: CollectedMessage) => number) {
  const seen = new Set<string>();
  const lastByTenant = new Map<string, number>();
  const inversions: string[] = [];
  let duplicates = 0;
  for (const m of [...messages].sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset))) {
    const id = m.headers.ce_id!;
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    const tenant = m.key!;
    const seq = seqOf(m);
    const last = lastByTenant.get(tenant) ?? -1;
    if (seq <= last) inversions.push(`${tenant}: ${seq} after ${last}`);
    lastByTenant.set(tenant, seq);
  }
  return { inversions, duplicates, distinct: seen.size };
}
