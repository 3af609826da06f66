export { runAudit, type AuditReport, type AuditProgress, type AuditPhase, type GroupReport } from './audit.js';
export { resolveAuditOptions, DEFAULT_AUDIT_MARGIN_MS, DEFAULT_SAMPLE_LIMIT, type AuditOptions, type ResolvedAuditOptions } from './options.js';
export type { Finding, EventSample, RecordSample, DuplicateSample, InversionSample, GapSample } from './sql/findings.js';
