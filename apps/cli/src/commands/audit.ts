import type { AuditProgress, AuditReport } from '@eventbus/audit';
import { COMMON_FLAGS, dateFlag, durationFlag, intFlag, listFlag, parseCommandArgs } from '../args.js';
import { usageError } from '../cli-error.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine } from '../io.js';
import { ProgressBar } from '../progress-bar.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';
import { formatAuditReport } from './audit-report.js';

const FLAGS = {
  ...COMMON_FLAGS,
  ...CONNECTION_FLAGS,
  from: { type: 'string' },
  to: { type: 'string' },
  tenant: { type: 'string' },
  types: { type: 'string' },
  group: { type: 'string' },
  margin: { type: 'string' },
  samples: { type: 'string' },
} as const;

export const auditCommand: Command = {
  path: ['audit'],
  summary: 'compare a window of the EventLog with Kafka, the outbox and the DLQ table',
  help: `Usage: eventbus audit --from <ISO> --to <ISO> [--tenant <id>] [--types <patterns>] [--group <ids>] [--json]

Reads the EventLog window (created_at from --from to --to, inclusive) and the topics the
relay sent those events to (the same routing: EVENTBUS_TOPIC_PREFIX, EVENTBUS_TOPIC_ROUTES),
by record time from --from minus the margin to --to plus the margin, and reports:
  missing      in the EventLog, not on Kafka, not waiting in the outbox, not dead-lettered by the relay
  phantom      on Kafka (ce_time in the window), no EventLog row with its ce_id
  duplicates   an event on Kafka more than once (replays, header ce_replayid, aside)
  inversions   per tenant and partition, an event Kafka holds after one the EventLog orders later
  per --group  events below the group's committed offsets that are neither in its inbox nor
               dead-lettered for it (known only for groups whose handlers use processOnce)

  --from, --to <ISO>       the window, required (2026-01-01, 2026-01-01T12:00:00Z)
  --tenant <id>            one tenant (default: all)
  --types <patterns>       comma-separated: product.*, order.# (default: all); with --group,
                           give the types the group subscribes to
  --group <ids>            comma-separated consumer group ids
  --margin <duration>      Kafka read beyond the window by record time (default 15m): an
                           event the relay published later than this after --to is missing
  --samples <n>            rows shown per finding (default 20; counts are always complete)

Ids are compared in temporary tables of one Postgres session; memory does not grow with the
window. Progress goes to stderr. Exit code 0: nothing missing or phantom (duplicates,
inversions and group gaps are reported, not failures); 3: something is missing or phantom.

Example:
  eventbus audit --from 2026-01-01 --to 2026-01-01T23:59:59Z --group billing --json

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('audit', argv, FLAGS);
    if (values.from === undefined || values.to === undefined) throw usageError('--from and --to are required (see: eventbus audit --help)');
    const from = dateFlag('from', values.from)!;
    const to = dateFlag('to', values.to)!;
    if (from > to) throw usageError(`--from ${values.from} is after --to ${values.to}: the window must not end before it starts`);
    if (values.tenant !== undefined && values.tenant.trim() === '') throw usageError('--tenant must not be empty');
    const groups = listFlag(values.group);
    if (groups.some((g) => g.length > 249)) throw usageError('--group must be consumer group ids (1 to 249 characters)');
    const marginMs = durationFlag('margin', values.margin, 15 * 60) * 1000;
    const sampleLimit = intFlag('samples', values.samples, 0, 10_000) ?? 20;
    const settings = new ConnectionSettings(values, io.env);
    const router = settings.router();
    const brokers = settings.brokers();
    const kafkaSecurity = settings.kafkaSecurity();
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { runAudit, resolveAuditOptions } = await import('@eventbus/audit');
    const bar = new ProgressBar(io.stderr, { label: 'kafka', unit: 'rec' });
    const options = {
      from,
      to,
      router,
      marginMs,
      sampleLimit,
      groups,
      eventTypes: listFlag(values.types),
      signal: io.signal,
      ...(values.tenant !== undefined ? { tenantId: values.tenant } : {}),
      onProgress: (p: AuditProgress) => {
        if (p.phase === 'event log') note(io, `event log: ${p.done.toLocaleString('en-US')} event(s) in the window`);
        else if (p.phase === 'kafka') bar.update({ sent: p.done, total: p.total, elapsedMs: p.elapsedMs }, p.done === p.total);
        else if (p.done === 0) {
          bar.finish();
          note(io, 'comparing…');
        }
      },
    };
    // Malformed --types (INVALID_CONFIG, exit 2) before any connection.
    resolveAuditOptions(options);
    router.topicsFor(options.eventTypes);
    const { TopicRangeReader } = await import('@eventbus/kafka');
    const { openDatabase } = await import('../connections.js');
    const db = await openDatabase(settings);
    const reader = new TopicRangeReader({ brokers, clientId: settings.clientId(), ...(kafkaSecurity ? { connection: kafkaSecurity } : {}) });
    let report: AuditReport;
    try {
      report = await runAudit(db, reader, options);
    } catch (error) {
      // Ctrl-C: the audit stops at the next Kafka batch; a partial comparison would report false findings, so none is printed.
      if (!io.signal.aborted) throw error;
      bar.finish();
      note(io, 'interrupted: no report (an audit compares only complete reads); run it again');
      return EXIT.interrupted;
    } finally {
      bar.finish();
      await reader.disconnect();
      await db.end();
    }
    if (values.json) printJson(io, report);
    else printLine(io, formatAuditReport(report));
    return report.clean ? EXIT.ok : EXIT.badData;
  },
};
