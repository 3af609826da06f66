import type { AuditReport, Finding } from '@eventbus/audit';

/** The audit as a person reads it: totals, then each finding with its count and samples. */
export function formatAuditReport(r: AuditReport): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const w = r.window;
  const lines = [
    `audit of ${w.from} .. ${w.to}${w.tenantId !== null ? `, tenant ${w.tenantId}` : ''}${w.eventTypes.length ? `, types ${w.eventTypes.join(',')}` : ''}`,
    `  event log: ${n(r.events)} event(s); on Kafka ${n(r.onKafka)}, in the outbox ${n(r.pending)}, dead-lettered by the relay ${n(r.relayDeadLettered)}`,
    `  Kafka: ${n(r.kafka.records)} record(s) in ${r.kafka.partitions} partition range(s) of ${r.topics.length} topic(s) (${r.topics.join(', ') || 'none'}), record time ${r.kafka.readFrom} .. ${r.kafka.readTo}`,
    `  replayed copies (ce_replayid): ${n(r.replayed)}`,
    '',
    section(
      'missing (in the log, not on Kafka, not pending, not dead-lettered)',
      r.missing,
      (s) => `${s.eventId}  ${s.tenantId}  ${s.eventType}  ${s.createdAt}`,
    ),
    section(
      'phantom (on Kafka, not in the log)',
      r.phantom,
      (s) => `${s.ceId ?? '(no ce_id)'}  ${s.tenantId ?? '-'}  ${s.eventType ?? '-'}  ${s.topic}/${s.partition}@${s.offset}`,
    ),
    section(
      'duplicates (same ce_id more than once, replays aside)',
      r.duplicates,
      (s) => `${s.eventId}  ${s.tenantId}  ${s.copies}x at ${s.positions.join(', ')}`,
    ),
    section(
      'order inversions (per tenant and partition)',
      r.inversions,
      (s) =>
        `${s.tenantId}  ${s.topic}/${s.partition}: ${s.eventId} (${s.createdAt}) at @${s.offset} after ${s.afterEventId} (${s.afterCreatedAt}) at @${s.afterOffset}`,
    ),
  ];
  for (const g of r.groups) {
    const head = `group ${g.groupId}: ${n(g.passed)} window event(s) below its committed offsets (${g.committedPartitions} partition(s) committed); handled ${n(g.handled)}, dead-lettered ${n(g.deadLettered)}`;
    if (!g.gaps) lines.push(`${head}\n  gaps: unknown: the group has no inbox rows (its handlers do not call processOnce), so handled events leave no trace`);
    else
      lines.push(
        `${head}\n${section('  passed but neither handled nor dead-lettered', g.gaps, (s) => `${s.eventId}  ${s.tenantId}  ${s.eventType}  ${s.topic}/${s.partition}@${s.offset} (committed ${s.committed})`)}`,
      );
  }
  lines.push(
    '',
    r.clean
      ? `clean: nothing missing or phantom (${(r.elapsedMs / 1000).toFixed(1)} s)`
      : `NOT CLEAN: ${n(r.missing.count)} missing, ${n(r.phantom.count)} phantom (${(r.elapsedMs / 1000).toFixed(1)} s)`,
  );
  return lines.join('\n');
}

function section<T>(title: string, finding: Finding<T>, line: (sample: T) => string): string {
  if (finding.count === 0) return `${title}: 0`;
  const more = finding.count > finding.samples.length ? `\n    … and ${(finding.count - finding.samples.length).toLocaleString('en-US')} more` : '';
  return `${title}: ${finding.count.toLocaleString('en-US')}\n${finding.samples.map((s) => `    ${line(s)}`).join('\n')}${more}`;
}
