import type pg from 'pg';
import { runAudit } from '@eventbus/audit';
import { errorMessage, TopicRouter } from '@eventbus/core';
import { TopicRangeReader } from '@eventbus/kafka';
import type { CheckResult } from './checker.js';

/** `eventbus audit`'s figures for a scenario, and whether they agree with the checker's. */
export interface ScenarioAudit {
  /** EventLog events in the window (the scenario's run, warm-up included) and Kafka records read. */
  events: number;
  records: number;
  missing: number;
  phantom: number;
  duplicates: number;
  inversions: number;
  /** Events the group's commits passed that are neither in its inbox nor dead-lettered for it. */
  groupGaps: number;
  elapsedMs: number;
  /** Where the audit and the checker disagree on lost or phantom events; empty when they agree. */
  disagreements: string[];
  error?: string;
}

// Enough to compare the audit's missing ids with the checker's lost ones one by one in any
// run that passes (a failing one has its own violations already).
const SAMPLE_LIMIT = 1000;

/**
 * The audit as a second, independent check after a scenario: it reads the event log, the
 * scenario's topics on Kafka, the outbox and the DLQ table, without the workers' delivery
 * records the checker uses. What it must agree with:
 * - missing (not on Kafka) ⊆ lost: an event a worker received was on Kafka.
 * - phantom on Kafka ⇔ phantom deliveries: a delivered phantom was on Kafka, and a phantom on
 *   Kafka reaches the group (which reads every record) unless it was lost after Kafka.
 * The window is the scenario's whole run, so nothing it wrote is outside it.
 */
export async function auditScenario(
  pool: pg.Pool,
  options: { brokers: string[]; prefix: string; groupId: string; from: Date; to: Date },
  check: CheckResult,
): Promise<ScenarioAudit> {
  const reader = new TopicRangeReader({ brokers: options.brokers, clientId: 'faults-audit' });
  const started = Date.now();
  try {
    const report = await runAudit(pool, reader, {
      from: options.from,
      to: options.to,
      router: new TopicRouter({ prefix: options.prefix }),
      groups: [options.groupId],
      marginMs: 5 * 60_000,
      sampleLimit: SAMPLE_LIMIT,
    });
    const lost = new Set(check.lost);
    const disagreements: string[] = [];
    const notLost = report.missing.samples.filter((s) => !lost.has(s.eventId));
    if (notLost.length > 0)
      disagreements.push(`the audit finds ${notLost.length} event(s) missing from Kafka that the checker saw delivered, e.g. ${notLost[0]!.eventId}`);
    if (report.missing.count > check.lost.length)
      disagreements.push(`the audit finds ${report.missing.count} event(s) missing from Kafka, the checker only ${check.lost.length} lost`);
    if (report.phantom.count > 0 !== check.phantom.length > 0)
      disagreements.push(`phantom: ${report.phantom.count} on Kafka (audit), ${check.phantom.length} delivered (checker)`);
    return {
      events: report.events,
      records: report.kafka.records,
      missing: report.missing.count,
      phantom: report.phantom.count,
      duplicates: report.duplicates.count,
      inversions: report.inversions.count,
      groupGaps: report.groups[0]?.gaps?.count ?? 0,
      elapsedMs: Date.now() - started,
      disagreements,
    };
  } catch (error) {
    const message = errorMessage(error);
    return {
      events: 0,
      records: 0,
      missing: 0,
      phantom: 0,
      duplicates: 0,
      inversions: 0,
      groupGaps: 0,
      elapsedMs: Date.now() - started,
      disagreements: [`the audit failed: ${message}`],
      error: message,
    };
  } finally {
    await reader.disconnect();
  }
}
