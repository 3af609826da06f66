import { KafkaCluster } from '@eventbus/dev-services';
import { runScenario, type MatrixEnvironment, type ScenarioResult } from './harness.js';
import { scenarios } from './scenarios.js';
import { ISOLATION_P99_RATIO } from './checker.js';

export interface MatrixOptions {
  short: boolean;
  /** Scenario ids to run; all when empty. */
  only: number[];
  /** Client port of node 1 of the local cluster (scenarios 10-13). Default 29092. */
  clusterPort?: number;
}

/** Runs the chosen scenarios one after the other (they would only compete for the 2 cores). */
export async function runFaultMatrix(env: MatrixEnvironment, options: MatrixOptions): Promise<ScenarioResult[]> {
  const chosen = scenarios({ short: options.short }).filter((s) => options.only.length === 0 || options.only.includes(s.id));
  const unknown = options.only.filter((id) => !chosen.some((s) => s.id === id));
  if (unknown.length > 0)
    throw new Error(
      `no scenario ${unknown.join(', ')}: expected one of ${scenarios({ short: false })
        .map((s) => s.id)
        .join(', ')}`,
    );
  // The 3-node cluster only when a chosen scenario needs it (three JVMs on a 2-core machine);
  // stopped afterwards if this run started it.
  const cluster =
    !env.cluster && chosen.some((s) => s.broker === 'cluster') ? await new KafkaCluster({ basePort: options.clusterPort, log: env.log }).start() : undefined;
  const runEnv = cluster ? { ...env, cluster } : env;
  const results: ScenarioResult[] = [];
  try {
    for (const def of chosen) {
      env.log(`scenario ${def.id}: ${def.name}`);
      const result = await runScenario(def, runEnv, options.short ? 60_000 : 180_000);
      env.log(`scenario ${def.id}: ${result.violations.length === 0 ? 'ok' : 'FAILED'} in ${(result.durationMs / 1000).toFixed(1)} s`);
      env.log(formatResults([result]).split('\n')[2]!);
      if (result.publishStall) env.log(stallNote(result));
      results.push(result);
    }
  } finally {
    await cluster?.stop();
  }
  return results;
}

/** One line: the longest publish stall, and the one around each fault. */
function stallNote(r: ScenarioResult): string {
  const stall = r.publishStall!;
  const perFault = stall.byFault
    .map((f) => `${f.kind}${f.detail ? ` (${f.detail})` : ''} ${fmtMs(f.stallMs)}, from ${fmtMs(f.startsAfterFaultMs)} after it began`)
    .join('; ');
  return `Scenario ${r.id}: publishing stalled at most ${fmtMs(stall.maxMs)}${perFault ? `; per fault: ${perFault}` : ''}.`;
}

/** One line: the audit's figures (event log vs Kafka vs DLQ table), the second check. */
function auditNote(r: ScenarioResult): string {
  const a = r.audit!;
  const verdict = a.disagreements.length === 0 ? 'agrees with the checker on lost and phantom' : 'DISAGREES with the checker';
  return `Scenario ${r.id}: audit of ${a.events} events and ${a.records} Kafka records: ${a.missing} missing from Kafka, ${a.phantom} phantom, ${a.duplicates} duplicated, ${a.inversions} inversions, ${a.groupGaps} passed by the group unhandled, in ${fmtMs(a.elapsedMs)}; ${verdict}.`;
}

const fmtMs = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

/** The results as a Markdown table (the README's format) plus notes and every violation. */
export function formatResults(results: ScenarioResult[]): string {
  const lines = [
    '| # | scenario | committed | rolled back | delivered | DLQ | lost | phantom | republished / bound | redelivered | inversions | inbox effects ≠ 1 | recovery | p99 latency | faults |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const faults =
      Object.entries(r.faultKinds)
        .map(([k, n]) => `${n}× ${k}`)
        .join(', ') || 'none';
    lines.push(
      `| ${r.id} | ${r.name} | ${r.committed} | ${r.rolledBack} | ${r.delivered} | ${r.deadLettered}/${r.poisonCommitted} | ${r.lost.length} | ${r.phantom.length} | ` +
        `${r.duplicates.republished} / ${r.duplicates.bound} | ${r.duplicates.redelivered} | ${r.inversions.length} | ${r.effectsNotOnce.length} | ` +
        `${fmtMs(r.recoveryMs)} | ${fmtMs(r.latencyMs.p99)} | ${faults} |`,
    );
  }
  const notes: string[] = [];
  const baseline = results.find((r) => r.id === 1);
  const poison = results.find((r) => r.id === 7);
  if (poison) {
    const control = poison.controlCleanTenantLatencyMs;
    notes.push(
      `Scenario 7: latency of the tenants that wrote no poison, commit → first delivery: p50 ${fmtMs(poison.cleanTenantLatencyMs.p50)}, p99 ${fmtMs(poison.cleanTenantLatencyMs.p99)} in the group that fails on poison` +
        (control
          ? `; p50 ${fmtMs(control.p50)}, p99 ${fmtMs(control.p99)} in a control group reading the same events at the same time without failing ` +
            `(p99 ratio ${(poison.cleanTenantLatencyMs.p99 / control.p99).toFixed(2)}, bound ${ISOLATION_P99_RATIO})`
          : '') +
        (baseline ? `; p99 ${fmtMs(baseline.cleanTenantLatencyMs.p99)} in scenario 1` : '') +
        '.',
    );
  }
  for (const r of results) {
    const kinds = Object.entries(r.recoveryByKindMs);
    if (kinds.length > 1) notes.push(`Scenario ${r.id}: recovery per fault kind (worst): ${kinds.map(([k, ms]) => `${k} ${fmtMs(ms)}`).join(', ')}.`);
    if (r.duplicates.redelivered > 0) {
      const sample = r.duplicates.samples.find((x) => new Set(x.deliveries.map((d) => `${d.partition}/${d.offset}`)).size < x.deliveries.length);
      if (sample) {
        const t0 = sample.deliveries[0]!.receivedAtMs;
        const how = sample.deliveries
          .map((d) => `${d.worker} at ${d.partition}/${d.offset} attempt ${d.attempt} +${Math.round(d.receivedAtMs - t0)} ms`)
          .join(', then ');
        notes.push(`Scenario ${r.id}: ${r.duplicates.redelivered} redelivered; e.g. event ${sample.eventId}: ${how}.`);
      }
    }
    if (r.publishStall) notes.push(stallNote(r));
    if (r.audit) notes.push(auditNote(r));
    if (r.duplicates.republished > 0) {
      const sample = r.duplicates.samples.find((x) => new Set(x.deliveries.map((d) => `${d.partition}/${d.offset}`)).size > 1);
      if (sample)
        notes.push(
          `Scenario ${r.id}: ${r.duplicates.republished} republished (bound ${r.duplicates.bound}); e.g. event ${sample.eventId} at ${[...new Set(sample.deliveries.map((d) => `${d.partition}/${d.offset}`))].join(' and ')}.`,
        );
    }
    if (r.unexpectedExits.length)
      notes.push(
        `Scenario ${r.id}: ${r.unexpectedExits.length} process(es) exited on their own and were restarted: ${r.unexpectedExits.map((e) => e.slice(0, 300)).join(' | ')}`,
      );
    for (const v of r.violations) notes.push(`Scenario ${r.id} VIOLATION: ${v}`);
  }
  return [...lines, '', ...notes].join('\n');
}
