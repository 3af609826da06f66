import type pg from 'pg';
import { COMMON_FLAGS, durationFlag, intFlag, parseCommandArgs } from '../args.js';
import { usageError } from '../cli-error.js';
import type { Command } from '../command.js';
import { confirmBulkAction } from '../confirm.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine, type CliIo } from '../io.js';
import { ProgressBar } from '../progress-bar.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';
import { formatDuration } from '../table.js';

const FLAGS = {
  ...COMMON_FLAGS,
  ...CONNECTION_FLAGS,
  'event-log-older-than': { type: 'string' },
  'dead-letters-older-than': { type: 'string' },
  'inbox-older-than': { type: 'string' },
  tenant: { type: 'string' },
  'batch-size': { type: 'string' },
  'dry-run': { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
} as const;

/** Retention may be years (an audit trail); 100 years only keeps the interval arithmetic finite. */
const MAX_AGE_SECONDS = 36_500 * 86_400;
/** Rows per transaction: short enough that no lock is held for long, large enough that per-transaction costs vanish. */
const DEFAULT_BATCH_SIZE = 5000;
const MAX_BATCH_SIZE = 50_000;
/**
 * Rows per inbox block when the table was never analyzed (a row is ~100 bytes: 97 per 8 kB block
 * measured; 75 with an 18-character subscription name, so a batch then holds fewer rows than
 * --batch-size, never more).
 */
const FALLBACK_INBOX_ROWS_PER_BLOCK = 100;

/** What one table's prune matched and did, as --json prints it. */
interface TableResult {
  /** The age as given: `90d`. */
  olderThan: string;
  /** now() − age, read once from the database's clock when the command started (ISO 8601). */
  cutoff: string;
  /** Rows that matched when counted, before anything was deleted. */
  matched: number;
  /** Rows deleted (0 with --dry-run). */
  deleted: number;
}

interface EventLogResult extends TableResult {
  tenant: string | null;
  /** Old events kept because they are still in the outbox (not yet published). */
  keptInOutbox: number;
  /** Old events kept because their relay-stage dead letter is pending (a re-drive needs them). */
  keptForDeadLetters: number;
}

interface DeadLettersResult extends TableResult {
  tenant: string | null;
  /** Pending dead letters dead-lettered before the cutoff: never pruned, still waiting for a re-drive or discard. */
  pendingKept: number;
}

/** The summary `eventbus prune --json` prints; a table not asked for is null. */
export interface PruneSummary {
  dryRun: boolean;
  /** Stopped by Ctrl-C between batches: what `deleted` says is gone, the rest is untouched. */
  interrupted: boolean;
  elapsedMs: number;
  eventLog: EventLogResult | null;
  deadLetters: DeadLettersResult | null;
  inbox: TableResult | null;
}

export const pruneCommand: Command = {
  path: ['prune'],
  summary: 'delete old EventLog events, resolved dead letters and inbox rows (retention), in small batches',
  help: `Usage: eventbus prune [--event-log-older-than <age>] [--dead-letters-older-than <age>]
                     [--inbox-older-than <age>] [--tenant <id>] [--batch-size <n>]
                     [--dry-run] [--yes] [--json]

Retention: nothing else ever deletes from these tables. Give at least one of:
  --event-log-older-than <age>     EventLog events created more than <age> ago. Never an event
                                   still in the outbox (not yet published), nor one whose
                                   relay-stage dead letter is pending: those are kept and
                                   counted. A replay cannot send what was deleted.
  --dead-letters-older-than <age>  dead letters re-driven or discarded more than <age> ago.
                                   Pending ones are never deleted: re-drive or discard them.
                                   A DLQ mirror that re-reads its topics from the start (a new
                                   DLQ_MIRROR_GROUP_ID) brings back, as pending, pruned ones the
                                   DLQ topics still hold: keep them longer than that retention.
  --inbox-older-than <age>         inbox rows (consumer group, event id, subscription)
                                   processed more than <age> ago. Trade-off: the inbox is
                                   what makes a redelivered event's effects run once; an event
                                   older than <age> that arrives again (a replay, a consumer
                                   group reset to old offsets) runs its effects again. Keep it
                                   longer than the Kafka topics' retention and any window you
                                   may replay.
<age> is a whole number of s, m, h or d: 12h, 90d, 730d. The cutoff is now() on the
database's clock minus <age>, read once when the command starts.
  --tenant <id>       only this tenant's events and dead letters (the inbox has no tenant)
  --batch-size <n>    rows per transaction (default ${DEFAULT_BATCH_SIZE}, at most ${MAX_BATCH_SIZE}); the inbox
                      goes by block ranges that hold about that many rows
  --dry-run           count what would be deleted; delete nothing
  --yes, -y           do not ask; required when stdin is not a terminal

It counts first, asks [y/N] on a terminal, then deletes in short transactions of at most
--batch-size rows, each tenant's oldest events first, so no lock is held for long and no
transaction grows large. Progress goes to stderr. Ctrl-C stops after the batch in flight:
what was deleted stays deleted, the summary says how much (exit 130), and running the same
command again goes on. Deleted rows free space for new rows after a vacuum; the files only
shrink with VACUUM FULL or pg_repack.

Examples:
  eventbus prune --event-log-older-than 365d --dead-letters-older-than 90d --dry-run
  eventbus prune --event-log-older-than 90d --tenant acme --yes --json
  eventbus prune --inbox-older-than 30d --yes

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('prune', argv, FLAGS);
    const ages = {
      eventLog: ageFlag('event-log-older-than', values['event-log-older-than']),
      deadLetters: ageFlag('dead-letters-older-than', values['dead-letters-older-than']),
      inbox: ageFlag('inbox-older-than', values['inbox-older-than']),
    };
    if (!ages.eventLog && !ages.deadLetters && !ages.inbox) {
      throw usageError(
        'say what to prune: --event-log-older-than, --dead-letters-older-than and/or --inbox-older-than, each with an age like 90d or 12h (see: eventbus prune --help)',
      );
    }
    const tenant = values.tenant ?? null;
    if (tenant !== null && (tenant.trim() === '' || tenant.length > 1000)) throw usageError('--tenant must be a tenant id (1 to 1000 characters)');
    if (tenant !== null && ages.inbox) {
      throw usageError(
        '--tenant does not apply to --inbox-older-than: inbox rows have no tenant (they are per consumer group, event id and subscription); prune the inbox in a run without --tenant',
      );
    }
    const batchSize = intFlag('batch-size', values['batch-size'], 1, MAX_BATCH_SIZE) ?? DEFAULT_BATCH_SIZE;
    const dryRun = values['dry-run'] ?? false;

    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { openDatabase } = await import('../connections.js');
    const sql: PruneSql = {
      eventLog: await import('@eventbus/outbox'),
      deadLetters: await import('@eventbus/dead-letters'),
      inbox: await import('@eventbus/consumer'),
    };
    const db = await openDatabase(new ConnectionSettings(values, io.env));
    try {
      const started = Date.now();
      const cutoffs = await readCutoffs(db, [ages.eventLog?.seconds ?? null, ages.deadLetters?.seconds ?? null, ages.inbox?.seconds ?? null]);
      // Count everything first: --dry-run stops here, the question names the numbers, and the progress bars know their totals.
      const { summary, eventPlan } = await countPrunable(db, sql, { ages, cutoffs, tenant, dryRun });
      const matched = (summary.eventLog?.matched ?? 0) + (summary.deadLetters?.matched ?? 0) + (summary.inbox?.matched ?? 0);
      // Ctrl-C while counting: nothing was deleted yet, so stop without asking.
      if (io.signal.aborted) summary.interrupted = true;
      else if (!dryRun && matched > 0) {
        await confirmBulkAction(io, `permanently delete ${describeMatches(summary)}?`, values.yes ?? false);
        const phases = await deletionPhases(io, db, sql, { summary, eventPlan, cutoffs, tenant, batchSize });
        try {
          for (const phase of phases) {
            if (!(await phase())) {
              summary.interrupted = true;
              break;
            }
          }
        } catch (error) {
          // Postgres went away (or refused) mid-run: the batches before committed; say how much, then fail as usual.
          note(io, `stopped by an error after deleting ${describeDeleted(summary)}; what is deleted stays deleted. Run the same command again to go on.`);
          throw error;
        }
      }
      summary.elapsedMs = Date.now() - started;
      report(io, summary, values.json ?? false);
      return summary.interrupted ? EXIT.interrupted : EXIT.ok;
    } finally {
      await db.end();
    }
  },
};

/** The retention statements, each from the package that owns its table (loaded only when prune runs). */
interface PruneSql {
  eventLog: typeof import('@eventbus/outbox');
  deadLetters: typeof import('@eventbus/dead-letters');
  inbox: typeof import('@eventbus/consumer');
}

type Ages = Record<'eventLog' | 'deadLetters' | 'inbox', { text: string; seconds: number } | undefined>;
type EventPlan = Awaited<ReturnType<PruneSql['eventLog']['countOldEvents']>>;

/** What each asked-for table holds past its cutoff (and what is kept: events still in the outbox or behind a pending dead letter). */
async function countPrunable(
  db: pg.Pool,
  sql: PruneSql,
  { ages, cutoffs, tenant, dryRun }: { ages: Ages; cutoffs: Array<Date | null>; tenant: string | null; dryRun: boolean },
): Promise<{ summary: PruneSummary; eventPlan: EventPlan }> {
  const eventPlan = ages.eventLog
    ? await sql.eventLog.countOldEvents(
        db,
        tenant !== null ? [tenant] : await sql.eventLog.eventLogTenants(db),
        cutoffs[0]!,
        sql.deadLetters.PENDING_RELAY_DEAD_LETTER_OF_EVENT,
      )
    : [];
  const deadLetterCounts = ages.deadLetters ? await sql.deadLetters.countOldDeadLetters(db, cutoffs[1]!, tenant) : undefined;
  const inboxCount = ages.inbox ? await sql.inbox.countOldInbox(db, cutoffs[2]!) : 0;
  const sum = (pick: (t: EventPlan[number]) => number) => eventPlan.reduce((n, t) => n + pick(t), 0);
  const summary: PruneSummary = {
    dryRun,
    interrupted: false,
    elapsedMs: 0,
    eventLog: ages.eventLog
      ? {
          ...table(
            ages.eventLog.text,
            cutoffs[0]!,
            sum((t) => t.prunable),
          ),
          tenant,
          keptInOutbox: sum((t) => t.inOutbox),
          keptForDeadLetters: sum((t) => t.pendingDeadLetter),
        }
      : null,
    deadLetters:
      ages.deadLetters && deadLetterCounts
        ? { ...table(ages.deadLetters.text, cutoffs[1]!, deadLetterCounts.prunable), tenant, pendingKept: deadLetterCounts.pending }
        : null,
    inbox: ages.inbox ? table(ages.inbox.text, cutoffs[2]!, inboxCount) : null,
  };
  return { summary, eventPlan };
}

/**
 * One phase per table with rows to delete, each running short batches until its table is done
 * (false: stopped by Ctrl-C). Event-log batches go through tenant groups, each tenant's oldest
 * first; inbox batches walk the table's blocks, so each is a bounded range scan.
 */
async function deletionPhases(
  io: CliIo,
  db: pg.Pool,
  sql: PruneSql,
  {
    summary,
    eventPlan,
    cutoffs,
    tenant,
    batchSize,
  }: { summary: PruneSummary; eventPlan: EventPlan; cutoffs: Array<Date | null>; tenant: string | null; batchSize: number },
): Promise<Array<() => Promise<boolean>>> {
  const phases: Array<() => Promise<boolean>> = [];
  if (summary.eventLog && summary.eventLog.matched > 0) {
    const result = summary.eventLog;
    const groups = packTenants(eventPlan, batchSize);
    let group = 0;
    phases.push(() =>
      runBatches(io, 'event log', result, async () => {
        const deleted = await sql.eventLog.deleteOldEvents(db, groups[group]!, cutoffs[0]!, batchSize, sql.deadLetters.PENDING_RELAY_DEAD_LETTER_OF_EVENT);
        // Fewer rows than the limit: this group's tenants have no prunable event left.
        if (deleted < batchSize) group++;
        return { deleted, done: group >= groups.length };
      }),
    );
  }
  if (summary.deadLetters && summary.deadLetters.matched > 0) {
    const result = summary.deadLetters;
    phases.push(() =>
      runBatches(io, 'dead letters', result, async () => {
        const deleted = await sql.deadLetters.deleteOldDeadLetters(db, cutoffs[1]!, tenant, batchSize);
        return { deleted, done: deleted < batchSize };
      }),
    );
  }
  if (summary.inbox && summary.inbox.matched > 0) {
    const result = summary.inbox;
    const extent = await sql.inbox.inboxExtent(db);
    const blocksPerBatch = Math.max(1, Math.floor(batchSize / (extent.rowsPerBlock ?? FALLBACK_INBOX_ROWS_PER_BLOCK)));
    let from = 0;
    phases.push(() =>
      runBatches(io, 'inbox', result, async () => {
        const to = Math.min(extent.blocks, from + blocksPerBatch);
        const deleted = await sql.inbox.deleteOldInboxRange(db, from, to, cutoffs[2]!);
        from = to;
        return { deleted, done: from >= extent.blocks };
      }),
    );
  }
  return phases;
}

/** An age flag as given and in seconds; undefined when absent. */
function ageFlag(name: string, value: string | undefined): { text: string; seconds: number } | undefined {
  if (value === undefined) return undefined;
  return { text: value, seconds: durationFlag(name, value, 0, MAX_AGE_SECONDS) };
}

/**
 * now() − each age, on the database's clock (a CLI host's clock may be off, and created_at
 * and friends were stamped by the database), read once so every batch uses the same cutoff.
 * Cut to milliseconds, so the cutoff reported (a JS Date) is exactly the one used.
 */
const CUTOFFS_SQL = `
SELECT date_trunc('milliseconds', now() - make_interval(secs => $1::float8)) AS event_log,
       date_trunc('milliseconds', now() - make_interval(secs => $2::float8)) AS dead_letters,
       date_trunc('milliseconds', now() - make_interval(secs => $3::float8)) AS inbox`;

async function readCutoffs(db: pg.Pool, seconds: Array<number | null>): Promise<Array<Date | null>> {
  const { rows } = await db.query(CUTOFFS_SQL, seconds);
  return [rows[0].event_log, rows[0].dead_letters, rows[0].inbox];
}

function table(olderThan: string, cutoff: Date, matched: number): TableResult {
  return { olderThan, cutoff: cutoff.toISOString(), matched, deleted: 0 };
}

/**
 * Tenants in groups whose counted rows fill about one batch: a tenant with few old events
 * shares a transaction with the next ones instead of costing one of its own; a tenant with
 * more than a batch is a group alone and takes several.
 */
export function packTenants(plan: ReadonlyArray<{ tenantId: string; prunable: number }>, batchSize: number): string[][] {
  const groups: string[][] = [];
  let current: string[] = [];
  let rows = 0;
  for (const { tenantId, prunable } of plan) {
    if (prunable === 0) continue;
    if (current.length > 0 && rows + prunable > batchSize) {
      groups.push(current);
      current = [];
      rows = 0;
    }
    current.push(tenantId);
    rows += prunable;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/**
 * Runs one table's batches until `batch` says done, adding to `result.deleted` and drawing
 * progress on stderr. Ctrl-C is looked at between batches only: the batch in flight commits,
 * so what it deleted is deleted and counted. Returns false when interrupted.
 */
async function runBatches(io: CliIo, label: string, result: TableResult, batch: () => Promise<{ deleted: number; done: boolean }>): Promise<boolean> {
  const bar = new ProgressBar(io.stderr, { label, unit: 'rows' });
  const started = Date.now();
  try {
    for (;;) {
      if (io.signal.aborted) return false;
      const { deleted, done } = await batch();
      result.deleted += deleted;
      // The count is from before the deletes: rows that changed since may make it off by a few.
      bar.update({ sent: result.deleted, total: Math.max(result.matched, result.deleted), elapsedMs: Date.now() - started }, done);
      if (done) return true;
    }
  } finally {
    bar.finish();
  }
}

function describeMatches(s: PruneSummary): string {
  const parts: string[] = [];
  if (s.eventLog)
    parts.push(
      `${count(s.eventLog.matched)} EventLog event(s) created before ${s.eventLog.cutoff}${s.eventLog.tenant !== null ? ` (tenant ${JSON.stringify(s.eventLog.tenant.slice(0, 80))})` : ''}`,
    );
  if (s.deadLetters) parts.push(`${count(s.deadLetters.matched)} resolved dead letter(s) from before ${s.deadLetters.cutoff}`);
  if (s.inbox) parts.push(`${count(s.inbox.matched)} inbox row(s) processed before ${s.inbox.cutoff}`);
  return parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : parts[0]!;
}

function report(io: CliIo, s: PruneSummary, json: boolean): void {
  if (json) printJson(io, s);
  else {
    const did = (r: TableResult) => (s.dryRun ? `would delete ${count(r.matched)}` : `deleted ${count(r.deleted)} of ${count(r.matched)}`);
    if (s.eventLog) {
      const kept = [
        s.eventLog.keptInOutbox > 0 ? `${count(s.eventLog.keptInOutbox)} still in the outbox` : '',
        s.eventLog.keptForDeadLetters > 0 ? `${count(s.eventLog.keptForDeadLetters)} of pending relay dead letters` : '',
      ].filter(Boolean);
      const who = s.eventLog.tenant !== null ? ` of tenant ${s.eventLog.tenant}` : '';
      printLine(
        io,
        `event log:     ${did(s.eventLog)} event(s)${who} created before ${s.eventLog.cutoff} (older than ${s.eventLog.olderThan})${kept.length > 0 ? `; kept ${kept.join(' and ')}` : ''}`,
      );
    }
    if (s.deadLetters) {
      const who = s.deadLetters.tenant !== null ? ` of tenant ${s.deadLetters.tenant}` : '';
      printLine(
        io,
        `dead letters:  ${did(s.deadLetters)} re-driven or discarded${who} before ${s.deadLetters.cutoff} (older than ${s.deadLetters.olderThan})${s.deadLetters.pendingKept > 0 ? `; kept ${count(s.deadLetters.pendingKept)} pending` : ''}`,
      );
    }
    if (s.inbox) printLine(io, `inbox:         ${did(s.inbox)} row(s) processed before ${s.inbox.cutoff} (older than ${s.inbox.olderThan})`);
  }
  // Hints, on stderr in both modes: what the operator may want to act on.
  if (s.deadLetters && s.deadLetters.pendingKept > 0) {
    note(
      io,
      `note: ${count(s.deadLetters.pendingKept)} pending dead letter(s) were dead-lettered before ${s.deadLetters.cutoff}; pending ones are never pruned: re-drive or discard them (eventbus dlq list)`,
    );
  }
  if (s.eventLog && s.eventLog.keptInOutbox > 0) {
    note(
      io,
      `note: ${count(s.eventLog.keptInOutbox)} event(s) older than the cutoff are still in the outbox, not yet published, and are kept (eventbus outbox status)`,
    );
  }
  if (s.interrupted) {
    note(
      io,
      `interrupted after ${formatDuration(s.elapsedMs / 1000)}: deleted ${describeDeleted(s)}; what is deleted stays deleted, the rest is untouched. Run the same command again to go on.`,
    );
  }
}

/** `30 event(s), 0 dead letter(s)`: what the tables asked for lost so far. */
function describeDeleted(s: PruneSummary): string {
  return [
    s.eventLog && `${count(s.eventLog.deleted)} event(s)`,
    s.deadLetters && `${count(s.deadLetters.deleted)} dead letter(s)`,
    s.inbox && `${count(s.inbox.deleted)} inbox row(s)`,
  ]
    .filter(Boolean)
    .join(', ');
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}
