import { COMMON_FLAGS, durationFlag, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';
import { formatDuration, formatTable } from '../table.js';

export const statsCommand: Command = {
  path: ['stats'],
  summary: "the pipeline's state from the database: backlog, oldest pending age, DLQ by group and stage, publish rate",
  help: `Usage: eventbus stats [--window 1h] [--json]

Reads the pipeline's state from Postgres (no relay or consumer needs to be reachable):
  backlog             outbox rows still to publish, failing ones, age of the oldest
  written/s           EventLog rows created within the window, per second
  published/s         of those, rows that have left the outbox, per second (the relay keeps no
                      publish times; EventLog-only writes count as published)
  dead letters        per stage and consumer group: pending, redriven, discarded, new in window
--window takes 90s, 15m, 1h, 7d (default 1h).

Example:
  eventbus stats --window 15m
  eventbus stats --json | jq '.deadLetters[] | select(.pending > 0)'

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('stats', argv, { ...COMMON_FLAGS, ...CONNECTION_FLAGS, window: { type: 'string' } });
    const windowSeconds = durationFlag('window', values.window, 3600);
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { eventFlow, outboxBacklog } = await import('@eventbus/outbox');
    const { openDatabase } = await import('../connections.js');
    const { deadLetterStatusCounts } = await import('@eventbus/dead-letters');
    const db = await openDatabase(new ConnectionSettings(values, io.env));
    try {
      const backlog = await outboxBacklog(db);
      const flow = await eventFlow(db, windowSeconds);
      const deadLetters = await deadLetterStatusCounts(db, windowSeconds);
      const stats = {
        windowSeconds,
        backlog,
        written: flow.written,
        published: flow.published,
        writtenPerSecond: round(flow.written / windowSeconds),
        publishedPerSecond: round(flow.published / windowSeconds),
        deadLetters,
        deadLettersPending: deadLetters.reduce((sum, d) => sum + d.pending, 0),
      };
      if (values.json) {
        printJson(io, stats);
        return EXIT.ok;
      }
      printLine(io, `window: last ${formatDuration(windowSeconds)}`);
      printLine(
        io,
        formatTable(
          ['METRIC', 'VALUE'],
          [
            ['outbox pending', backlog.pending],
            ['outbox failing', backlog.failing],
            ['oldest pending age', formatDuration(backlog.oldestAgeSeconds)],
            ['events written', `${flow.written} (${stats.writtenPerSecond}/s)`],
            ['events published', `${flow.published} (${stats.publishedPerSecond}/s)`],
            ['dead letters pending', stats.deadLettersPending],
          ],
        ),
      );
      if (deadLetters.length > 0) {
        printLine(io);
        printLine(
          io,
          formatTable(
            ['DLQ STAGE', 'GROUP', 'PENDING', 'REDRIVEN', 'DISCARDED', 'NEW IN WINDOW'],
            deadLetters.map((d) => [d.stage, d.groupId ?? '(relay)', d.pending, d.redriven, d.discarded, d.newInWindow]),
          ),
        );
      }
      return EXIT.ok;
    } finally {
      await db.end();
    }
  },
};

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
