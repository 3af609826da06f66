import { isEventBusError } from '@eventbus/core';
import type { DeadLetterActionResult, DeadLetterDetail, DeadLetterSummary } from '@eventbus/dead-letters';
import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import { CliError, describeFailure, usageError } from '../cli-error.js';
import type { Command } from '../command.js';
import { confirmBulkAction } from '../confirm.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { type CliIo, note, printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';
import { DLQ_FILTER_FLAGS, DLQ_FILTER_HELP, dlqFilterFromFlags } from './dlq-filters.js';
import { DEAD_LETTER_ID } from './dlq-show.js';

const FLAGS = {
  ...COMMON_FLAGS,
  ...CONNECTION_FLAGS,
  ...DLQ_FILTER_FLAGS,
  all: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
} as const;

type Action = 'retry' | 'discard';

/** One planned or done action on a dead letter, as printed (and as --json returns it). */
interface ActionLine {
  id: string;
  /** `failed`: the action threw for this row (its transaction rolled back, the row is unchanged); `message` says why. */
  outcome: DeadLetterActionResult['outcome'] | 'would_redrive' | 'would_discard' | 'not_pending' | 'failed';
  stage?: 'relay' | 'consumer';
  message: string;
}

export const dlqRetryCommand = dlqActionCommand('retry');
export const dlqDiscardCommand = dlqActionCommand('discard');

function dlqActionCommand(action: Action): Command {
  const verb = action === 'retry' ? 're-drive' : 'discard';
  return {
    path: ['dlq', action],
    summary:
      action === 'retry'
        ? "re-drive dead letters: to the failing group's retry topic, or (relay stage) back through the outbox"
        : 'mark dead letters discarded (they will not be re-driven)',
    help: `Usage: eventbus dlq ${action} <id> [<id>...] [--dry-run] [--json]
       eventbus dlq ${action} --all [filters] [--dry-run] [--yes] [--json]

${
  action === 'retry'
    ? `Re-drives pending dead letters. A consumer-stage row goes to its group's retry topic only
(attempt 1, due now; the other groups are not disturbed); a relay-stage row gets a new
outbox row and the relay publishes it again. Each row is locked and marked redriven in
one transaction: running the same retry twice sends the event once.`
    : `Marks pending dead letters discarded: they stay in the table for the record and are
never re-driven. Rows that are not pending are left alone and reported.`
}
--all acts on every pending row the filters match and asks for confirmation unless --yes
(without a terminal, --yes is required). --dry-run lists what would happen and changes nothing.
A row that cannot be acted on does not stop the others: it is reported as failed with the
reason, every row is printed, and the exit code is 3 (bad data) or 4 (service unavailable;
2 when a setting it needs is missing, e.g. KAFKA_BROKERS for a consumer-stage row).

${DLQ_FILTER_HELP}

Examples:
  eventbus dlq ${action} 42 43
  eventbus dlq ${action} --all --group billing --type 'order.*' --dry-run
  eventbus dlq ${action} --all --group billing --since 2026-01-01 --yes --json

${CONNECTION_HELP}`,
    async run(argv, io) {
      const { values, positionals } = parseCommandArgs(`dlq ${action}`, argv, FLAGS, true);
      const all = values.all ?? false;
      if (all && positionals.length > 0) throw usageError(`give ids or --all, not both (see: eventbus dlq ${action} --help)`);
      if (!all && positionals.length === 0) throw usageError(`give the ids to ${verb}, or --all with filters (see: eventbus dlq ${action} --help)`);
      const filterFlagUsed = Object.keys(DLQ_FILTER_FLAGS).some((name) => values[name as keyof typeof DLQ_FILTER_FLAGS] !== undefined);
      if (!all && filterFlagUsed) throw usageError('filters only apply with --all');
      if (values.status !== undefined && values.status !== 'pending')
        throw usageError(`only pending dead letters can be ${action === 'retry' ? 're-driven' : 'discarded'}; drop --status`);
      for (const id of positionals)
        if (!DEAD_LETTER_ID.test(id)) throw usageError(`${JSON.stringify(id.slice(0, 80))} is not a dead letter id (a positive integer)`);
      const filter = all ? await dlqFilterFromFlags(values, 1000) : undefined;

      // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
      const { DLQ_HEADER, retryTopicFor } = await import('@eventbus/core');
      const { discardDeadLetter, listDeadLetters, redriveDeadLetter, showDeadLetter } = await import('@eventbus/dead-letters');
      const { LazyPublisher, openDatabase } = await import('../connections.js');
      const settings = new ConnectionSettings(values, io.env);
      const routing = action === 'retry' ? settings.routing() : undefined;
      const db = await openDatabase(settings);
      // Kafka that fails to connect once is not tried again for every row (each try takes seconds).
      const publisher = new LazyPublisher(() => settings.brokers(), settings.clientId(), {
        retryConnect: false,
        setting: settings.brokersSetting(),
        connection: () => settings.kafkaSecurity(),
      });
      try {
        const targets: Target[] = [];
        if (filter) for (const row of await listDeadLetters(db, filter)) targets.push({ id: row.id, row });
        else for (const id of positionals) targets.push({ id, row: await showDeadLetter(db, id) });

        let outcome: { lines: ActionLine[]; failureCode?: FailureCode };
        if (values['dry-run']) {
          // A listed row without the value is planned with its coordinates: the re-drive reads the original there.
          for (const target of targets)
            if (target.row && target.row.refusedCopyBytes !== null && target.row.topic === undefined)
              target.row = (await showDeadLetter(db, target.id)) ?? target.row;
          const retryTopicOf = (r: PlannedRow) => r.headers?.[DLQ_HEADER.retryTopic] ?? retryTopicFor(routing?.prefix ?? '', r.groupId ?? '');
          outcome = { lines: targets.map(({ id, row }) => plan(action, id, row, retryTopicOf)) };
        } else {
          if (all && targets.length > 0) await confirmBulkAction(io, `${verb} ${targets.length} dead letter(s)?`, values.yes ?? false);
          outcome = await actOnEach(action, targets, (id) =>
            action === 'retry' ? redriveDeadLetter(db, publisher, id, { ...(routing ? { routing } : {}) }) : discardDeadLetter(db, id),
          );
        }
        return report(io, outcome, {
          json: values.json ?? false,
          limitReached: all && filter !== undefined && targets.length === filter.limit,
          limit: filter?.limit,
        });
      } finally {
        await publisher.disconnect().catch(() => undefined);
        await db.end();
      }
    },
  };
}

type FailureCode = typeof EXIT.badData | typeof EXIT.unavailable | typeof EXIT.usage;
type Target = { id: string; row: PlannedRow | undefined };

/**
 * Runs the action on each row, each in its own transaction: a row that fails is reported and
 * the others go on (the ones before stay done). Once Postgres is unreachable, the remaining
 * rows are reported as not attempted rather than each waiting out a connection timeout.
 * Returns the lines and the exit code of the worst failure: 4 (a service unavailable) over 2 (a
 * missing setting, e.g. KAFKA_BROKERS for a consumer-stage row) over 3 (the row's data).
 */
async function actOnEach(action: Action, targets: readonly Target[], act: (id: string) => Promise<DeadLetterActionResult>) {
  const lines: ActionLine[] = [];
  let failureCode: FailureCode | undefined;
  const rank = (c: FailureCode | undefined) => (c === EXIT.unavailable ? 3 : c === EXIT.usage ? 2 : c === EXIT.badData ? 1 : 0);
  let postgresDown: string | undefined;
  for (const { id, row } of targets) {
    const stage = row ? { stage: row.stage } : {};
    if (postgresDown) {
      lines.push({ id, outcome: 'failed', ...stage, message: `dead letter ${id}: not attempted (${postgresDown})` });
      continue;
    }
    try {
      lines.push(await act(id));
    } catch (error) {
      const { exitCode, message } = describeFailure(error);
      const unavailable = exitCode === EXIT.unavailable;
      const code = unavailable ? EXIT.unavailable : error instanceof CliError && error.kind === 'usage' ? EXIT.usage : EXIT.badData;
      if (rank(code) > rank(failureCode)) failureCode = code;
      lines.push({ id, outcome: 'failed', ...stage, message: `dead letter ${id} not ${action === 'retry' ? 're-driven' : 'discarded'}: ${message}` });
      if (unavailable && !isKafkaFailure(error)) postgresDown = `Postgres unavailable: ${message}`;
    }
  }
  return { lines, ...(failureCode !== undefined ? { failureCode } : {}) };
}

/** Prints the lines (or --json) and the notes, and returns the exit code. */
function report(
  io: CliIo,
  { lines, failureCode }: { lines: ActionLine[]; failureCode?: FailureCode },
  options: { json: boolean; limitReached: boolean; limit: number | undefined },
): ExitCode {
  if (options.json) printJson(io, lines);
  else if (lines.length === 0) note(io, 'no pending dead letters match');
  else for (const line of lines) printLine(io, line.message);
  if (options.limitReached) note(io, `stopped at --limit ${options.limit}; run again for the rest`);
  const failed = lines.filter((l) => l.outcome === 'failed').length;
  if (failed > 0) note(io, `${failed} of ${lines.length} dead letter(s) failed; the others are done as printed`);
  if (failureCode !== undefined) return failureCode;
  return lines.some((l) => l.outcome === 'not_found') ? EXIT.badData : EXIT.ok;
}

/** A Kafka failure (the CLI's own connect error, kafkajs, a publish error), as opposed to Postgres. */
function isKafkaFailure(error: unknown): boolean {
  const e = error as { name?: string; message?: string; cause?: unknown } | undefined;
  return (
    e?.name === 'PublishError' ||
    (e?.name?.startsWith('KafkaJS') ?? false) ||
    isEventBusError(e, 'BROKER_UNAVAILABLE') ||
    isEventBusError(e?.cause, 'BROKER_UNAVAILABLE') ||
    /^Kafka /.test(e?.message ?? '')
  );
}

type PlannedRow = DeadLetterSummary & Partial<Pick<DeadLetterDetail, 'headers' | 'topic' | 'partition' | 'offset'>>;

function plan(action: Action, id: string, row: PlannedRow | undefined, retryTopicOf: (row: PlannedRow) => string): ActionLine {
  if (!row) return { id, outcome: 'not_found', message: `dead letter ${id} does not exist` };
  if (row.status !== 'pending') return { id, outcome: 'not_pending', stage: row.stage, message: `dead letter ${id} is ${row.status}; it would be left alone` };
  if (action === 'discard')
    return {
      id,
      outcome: 'would_discard',
      stage: row.stage,
      message: `would discard dead letter ${id} (${row.eventType ?? 'undecodable'}, tenant ${row.tenantId ?? '-'})`,
    };
  const where = row.stage === 'relay' ? 'to the outbox (the relay publishes it again)' : `to ${retryTopicOf(row)} (group ${row.groupId} only)`;
  // A row without the value re-drives the original record, read from its topic at the row's coordinates.
  const from =
    row.stage === 'consumer' && row.refusedCopyBytes !== null
      ? `, reading the original from ${row.topic} partition ${row.partition} offset ${row.offset} (the row holds no value),`
      : '';
  return {
    id,
    outcome: 'would_redrive',
    stage: row.stage,
    message: `would re-drive dead letter ${id} (${row.eventType ?? 'undecodable'}, tenant ${row.tenantId ?? '-'})${from} ${where}`,
  };
}
