import type { ReplayCursor, ReplayFilter, ReplayTarget, RepublishResult } from '@eventbus/replay';
import { COMMON_FLAGS, dateFlag, intFlag, listFlag, parseCommandArgs, positiveNumberFlag } from '../args.js';
import { isEventBusError, shellQuote } from '@eventbus/core';
import { badData, CliError, usageError } from '../cli-error.js';
import { confirmBulkAction } from '../confirm.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine, type CliIo } from '../io.js';
import { ProgressBar } from '../progress-bar.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings, redactUrl } from '../settings.js';
import { formatDuration } from '../table.js';

const FLAGS = {
  ...COMMON_FLAGS,
  ...CONNECTION_FLAGS,
  tenant: { type: 'string' },
  types: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  'correlation-id': { type: 'string' },
  // Repeatable as well as a comma list: a repeated single-value flag would keep only its last value, silently dropping ids.
  'event-id': { type: 'string', multiple: true },
  'to-topic': { type: 'string' },
  group: { type: 'string' },
  rate: { type: 'string' },
  'dry-run': { type: 'boolean' },
  resume: { type: 'string' },
  after: { type: 'string' },
  'page-size': { type: 'string' },
  yes: { type: 'boolean', short: 'y' },
} as const;

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const EVENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const replayCommand: Command = {
  path: ['replay'],
  summary: "republish a tenant's EventLog events to Kafka (all groups, one topic, or one group)",
  help: `Usage: eventbus replay --tenant <id> [filters] [target] [--rate <n/s>] [--dry-run] [--yes] [--json]

Republishes the tenant's events from the EventLog, oldest first ((created_at, id) order),
in the relay's message format plus the header ce_replayid (one id per replay). Consumers
deduplicate by ce_id, so a replay into a consumer that uses the inbox changes nothing twice.

Filters (each a bound parameter; a replay never reads another tenant's events):
  --tenant <id>            required
  --types <patterns>       comma-separated: product.*, product.#, pricechange.applied
  --from <ISO>             created at or after (2026-01-01, 2026-01-01T12:00:00Z)
  --to <ISO>               created at or before (see "Upper bound" below)
  --correlation-id <id>
  --event-id <ids>         only these events: uuids, comma-separated or the flag repeated
                           (at most 1000); the other filters narrow them further. An id the
                           tenant's EventLog does not have exits 3, naming it; nothing is sent
                           (with --dry-run too)
Target (default: the topic the relay publishes each type to, i.e. every subscriber; this
re-sends to every consumer group, so it asks [y/N] on a terminal and needs --yes in a script):
  --to-topic <name>        one topic
  --group <group>          only that consumer group, through its retry topic
Control:
  --rate <n>               at most n events per second (default: as fast as Kafka acks)
  --dry-run                count and show the first and last event; send nothing
  --resume <token>         continue an interrupted replay (the token it printed)
  --after <event id>       start after this event of the tenant
  --page-size <n>          events read and sent per page (default 500)
  --yes, -y                do not ask before re-sending to the shared event topics

Upper bound: a replay reads events created before min(--to, the start of the oldest
transaction still open when it starts): an event of a transaction that is still open is
committed later with its transaction's start time, and reading past it would skip it. The
bound is reported (JSON: upperBound) and kept by --resume; replay later events with
--from <bound>. Transactions of other roles are seen only with pg_read_all_stats.

Progress (count, rate, ETA) goes to stderr: a bar on a terminal, else a line every 5 s.
Ctrl-C stops after the page in flight and prints the command that resumes without gaps.

Examples:
  eventbus replay --tenant acme --types 'product.*,pricechange.applied' \\
    --from 2026-01-01 --to 2026-01-31T23:59:59Z --group search-indexer --rate 500
  eventbus replay --tenant acme --types 'order.#' --dry-run --json
  eventbus replay --tenant acme --from 2026-01-01 --yes
  eventbus replay --tenant acme --group billing \
    --event-id 01a25176-edf1-7497-9005-3b5a3891963a,01a25176-ee02-7c1d-8a2e-61f0e3b0c4d7 --dry-run

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('replay', argv, FLAGS);
    checkFlagCombinations(values);
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const replay = await import('@eventbus/replay');
    const { republishEvents } = replay;
    const { findEventCursor } = await import('@eventbus/outbox');
    const { LazyPublisher, openDatabase } = await import('../connections.js');
    const { filter, pageSize, rate, dryRun, resumePoint } = readReplayFlags(values, replay);

    const settings = new ConnectionSettings(values, io.env);
    const router = settings.router();
    const target: ReplayTarget =
      values['to-topic'] !== undefined
        ? { kind: 'topic', topic: values['to-topic'] }
        : values.group !== undefined
          ? { kind: 'group', groupId: values.group, router }
          : { kind: 'event-topics', router };
    const brokers = dryRun ? [] : settings.brokers();
    const kafkaSecurity = dryRun ? undefined : settings.kafkaSecurity();

    const db = await openDatabase(settings);
    const publisher = dryRun
      ? undefined
      : new LazyPublisher(() => brokers, settings.clientId(), { setting: settings.brokersSetting(), connection: () => kafkaSecurity });
    try {
      let after: ReplayCursor | undefined = resumePoint?.cursor;
      if (values.after !== undefined) {
        after = await findEventCursor(db, filter.tenantId, values.after);
        if (!after) throw badData(`--after ${JSON.stringify(values.after.slice(0, 80))}: tenant ${JSON.stringify(filter.tenantId)} has no event with this id`);
      }
      // Connect before reading, so an unreachable broker fails fast (exit 4) instead of after the first page.
      await publisher?.connect();
      // The default target re-sends to every consumer group subscribed to the topics: ask
      // (after the connections work, so a "yes" is not followed by an outage error).
      if (target.kind === 'event-topics' && !dryRun) {
        await confirmBulkAction(
          io,
          `re-send tenant ${JSON.stringify(filter.tenantId.slice(0, 80))}'s events to the shared event topics, where every consumer group sees them again (--group or --to-topic narrow that)?`,
          values.yes ?? false,
        );
      }
      const bar = new ProgressBar(io.stderr);
      let result: RepublishResult;
      try {
        result = await republishEvents(db, {
          filter,
          target,
          pageSize,
          dryRun,
          signal: io.signal,
          ...optional('publisher', publisher),
          ...optional('replayId', resumePoint?.replayId),
          ...optional('after', after),
          ...optional('upperBound', resumePoint?.upperBound),
          ...optional('ratePerSecond', rate),
          onProgress: (p) => bar.update(p, p.sent === p.total),
        });
      } catch (error) {
        bar.finish();
        throw withResumeHint(error, argv);
      }
      bar.finish();
      warnAboutHiddenSessions(io, result.upperBound.hiddenSessions);
      report(io, result, values.json ?? false, argv, values['event-id'] !== undefined);
      return result.interrupted ? EXIT.interrupted : EXIT.ok;
    } finally {
      await publisher?.disconnect().catch(() => undefined);
      await db.end();
    }
  },
};

type ReplayFlags = ReturnType<typeof parseCommandArgs<typeof FLAGS>>['values'];

/** Flags that exclude each other or must be well-formed before anything loads (exit 2). */
function checkFlagCombinations(values: ReplayFlags): void {
  if (values.tenant === undefined) throw usageError('--tenant is required (see: eventbus replay --help)');
  if (values['to-topic'] !== undefined && values.group !== undefined) throw usageError('--to-topic and --group exclude each other: pick one target');
  if (values.resume !== undefined && values.after !== undefined) throw usageError('--resume and --after exclude each other');
  if (values['to-topic'] !== undefined && !TOPIC_NAME.test(values['to-topic']))
    throw usageError(`--to-topic ${JSON.stringify(values['to-topic'].slice(0, 80))} is not a Kafka topic name`);
  if (values.after !== undefined && !EVENT_ID.test(values.after))
    throw usageError(`--after ${JSON.stringify(values.after.slice(0, 80))} is not an event id (a uuid)`);
  if (values['event-id'] !== undefined) {
    const ids = eventIdFlag(values['event-id']);
    if (ids.length === 0) throw usageError('--event-id needs at least one event id (a uuid)');
    const bad = ids.find((id) => !EVENT_ID.test(id));
    if (bad !== undefined) throw usageError(`--event-id ${JSON.stringify(bad.slice(0, 80))} is not an event id (a uuid)`);
  }
  if (values.group !== undefined && (values.group.trim() === '' || values.group.length > 249))
    throw usageError('--group must be a consumer group id (1 to 249 characters)');
}

/** The filter, paging, pacing and resume point the flags ask for; bad values fail here, before any connection. */
function readReplayFlags(values: ReplayFlags, replay: typeof import('@eventbus/replay')) {
  const filter: ReplayFilter = {
    tenantId: values.tenant!,
    eventTypes: listFlag(values.types),
    ...optional('fromDate', dateFlag('from', values.from)),
    ...optional('toDate', dateFlag('to', values.to)),
    ...optional('correlationId', values['correlation-id']),
    ...optional('eventIds', values['event-id'] === undefined ? undefined : eventIdFlag(values['event-id'])),
  };
  const resolved = replay.resolveReplayFilter(filter); // INVALID_CONFIG → exit 2
  const resumePoint = values.resume === undefined ? undefined : replay.decodeResumeToken(values.resume);
  // A token of another tenant or other filters would silently skip events: refused (exit 2).
  if (resumePoint) replay.checkResumePoint(resumePoint, resolved);
  return {
    filter,
    pageSize: intFlag('page-size', values['page-size'], 1, 10_000) ?? 500,
    rate: positiveNumberFlag('rate', values.rate),
    dryRun: values['dry-run'] ?? false,
    resumePoint,
  };
}

/** Every --event-id value, each a comma list. */
function eventIdFlag(values: readonly string[]): string[] {
  return values.flatMap((value) => listFlag(value));
}

function warnAboutHiddenSessions(io: CliIo, hiddenSessions: number): void {
  if (hiddenSessions === 0) return;
  note(
    io,
    `warning: ${hiddenSessions} session(s) of other roles are not visible in pg_stat_activity; an event they commit late may be past this replay's cursor. Grant pg_read_all_stats to this role to include their transactions in the upper bound.`,
  );
}

/**
 * A replay that Kafka stopped (after the publisher's retries) still knows how far it got:
 * the error's message gains the command that continues from there. Exit code 4 for an
 * outage, 3 when Kafka refused the messages themselves.
 */
function withResumeHint(error: unknown, argv: string[]): unknown {
  if (!isEventBusError(error, 'PUBLISH_FAILED')) return error;
  const token = error.details.resumeToken as string | null;
  const resume = token
    ? `\nresume with:\n  eventbus replay ${withoutResumeFlags(argv)
        .map((arg) => shellQuote(arg))
        .join(' ')} --resume ${token}`
    : '';
  const refused = (error.cause as { kind?: string } | undefined)?.kind === 'rejected';
  return new CliError(refused ? 'bad_data' : 'unavailable', `${error.message}${resume}`, { cause: error });
}

function report(io: CliIo, result: RepublishResult, json: boolean, argv: string[], byEventId: boolean): void {
  const resumeCommand =
    result.interrupted && result.resumeToken
      ? `eventbus replay ${withoutResumeFlags(argv)
          .map((arg) => shellQuote(arg))
          .join(' ')} --resume ${result.resumeToken}`
      : null;
  if (json) printJson(io, { ...result, resumeCommand });
  else {
    const verb = result.dryRun ? 'would send' : 'sent';
    printLine(io, `replay ${result.replayId}: ${verb} ${result.sent} of ${result.total} event(s) in ${formatDuration(result.elapsedMs / 1000)}`);
    if (result.first) printLine(io, `  first: ${result.first.id} ${result.first.eventType} ${result.first.createdAt} -> ${result.first.topic}`);
    if (result.last) printLine(io, `  last:  ${result.last.id} ${result.last.eventType} ${result.last.createdAt} -> ${result.last.topic}`);
    // A replay by id selected its events already: there are no later ones to point to.
    const later = byEventId ? '' : `; later ones: --from ${result.upperBound.bound}`;
    printLine(io, `  upper bound: events created before ${result.upperBound.bound} (${BOUND_REASON[result.upperBound.limitedBy]})${later}`);
  }
  if (resumeCommand) {
    note(io, `interrupted after ${result.sent} of ${result.total} event(s); everything up to event ${result.lastEventId} was acknowledged by Kafka.`);
    note(io, `resume with:\n  ${resumeCommand}\nor: --after ${result.lastEventId}`);
  }
}

const BOUND_REASON: Record<RepublishResult['upperBound']['limitedBy'], string> = {
  to: 'set by --to',
  'open-transaction': 'the start of a transaction still open when the replay began',
  now: 'when the replay began',
  resumed: 'kept from the resumed replay',
};

/** The original arguments without a previous --resume/--after, to print the resuming command. */
function withoutResumeFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--resume' || arg === '--after') i++;
    else if (arg === '--database-url' && i + 1 < argv.length) out.push(arg, redactUrl(argv[++i]!));
    else if (arg.startsWith('--database-url=')) out.push(`--database-url=${redactUrl(arg.slice('--database-url='.length))}`);
    else if (!arg.startsWith('--resume=') && !arg.startsWith('--after=')) out.push(arg);
  }
  return out;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
