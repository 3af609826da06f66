import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';
import { formatTable } from '../table.js';
import { DLQ_FILTER_FLAGS, DLQ_FILTER_HELP, dlqFilterFromFlags } from './dlq-filters.js';

export const dlqListCommand: Command = {
  path: ['dlq', 'list'],
  summary: 'list dead letters (newest first)',
  help: `Usage: eventbus dlq list [filters] [--json]

Lists rows of eventbus.dead_letters: events the relay could not publish (stage relay) and
events a consumer group gave up on (stage consumer).

${DLQ_FILTER_HELP}

Example:
  eventbus dlq list --group billing --type 'order.*' --since 2026-01-01 --json

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('dlq list', argv, { ...COMMON_FLAGS, ...CONNECTION_FLAGS, ...DLQ_FILTER_FLAGS });
    const filter = await dlqFilterFromFlags(values, 50);
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { openDatabase } = await import('../connections.js');
    const { listDeadLetters } = await import('@eventbus/dead-letters');
    const db = await openDatabase(new ConnectionSettings(values, io.env));
    try {
      const rows = await listDeadLetters(db, filter);
      if (values.json) {
        printJson(io, rows);
        return EXIT.ok;
      }
      if (rows.length === 0) {
        note(io, 'no dead letters match');
        return EXIT.ok;
      }
      printLine(
        io,
        formatTable(
          ['ID', 'STAGE', 'GROUP', 'TENANT', 'TYPE', 'ATTEMPTS', 'STATUS', 'LAST FAILED', 'ERROR'],
          rows.map((r) => [
            r.id,
            r.stage,
            r.groupId,
            r.tenantId,
            r.eventType,
            r.attempts,
            r.status,
            r.lastFailedAt.toISOString(),
            `${r.refusedCopyBytes === null ? '' : '[value not stored] '}${r.errorClass}: ${r.errorMessage}`,
          ]),
        ),
      );
      if (rows.length === filter.limit) note(io, `showing the newest ${filter.limit}; raise --limit to see more`);
      return EXIT.ok;
    } finally {
      await db.end();
    }
  },
};
