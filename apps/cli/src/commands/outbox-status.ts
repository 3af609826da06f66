import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';
import { formatDuration, formatTable } from '../table.js';

export const outboxStatusCommand: Command = {
  path: ['outbox', 'status'],
  summary: 'pending and failing outbox rows, oldest age, per shard, and which relay holds each shard',
  help: `Usage: eventbus outbox status [--all-shards] [--json]

Shows what the relay still has to publish: pending rows, rows failing (waiting for a retry
after Kafka refused them), the age of the oldest pending event, per shard (tenants hash
into 64 shards), and which relay instance holds each shard's lock right now. The text
output lists the shards with a backlog (--all-shards: every shard); --json has them all.

Example:
  eventbus outbox status
  eventbus outbox status --json | jq '.shards[] | select(.heldBy == null and .pending > 0)'

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('outbox status', argv, { ...COMMON_FLAGS, ...CONNECTION_FLAGS, 'all-shards': { type: 'boolean' } });
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { outboxBacklog, outboxShards } = await import('@eventbus/outbox');
    const { openDatabase } = await import('../connections.js');
    const { relayInstances } = await import('@eventbus/relay');
    const db = await openDatabase(new ConnectionSettings(values, io.env));
    try {
      const [backlog, shards, instances] = [await outboxBacklog(db), await outboxShards(db), await relayInstances(db)];
      const held = shards.filter((s) => s.heldBy !== null).length;
      if (values.json) {
        printJson(io, { ...backlog, shardsHeld: held, shards, relayInstances: instances });
        return EXIT.ok;
      }
      printLine(io, `pending: ${backlog.pending}   failing: ${backlog.failing}   oldest pending: ${formatDuration(backlog.oldestAgeSeconds)}`);
      printLine(
        io,
        `shards held by a relay: ${held} of ${shards.length}${held < shards.length ? '  (unheld shards are not published until a relay takes them)' : ''}`,
      );
      const shown = values['all-shards'] ? shards : shards.filter((s) => s.pending > 0);
      if (shown.length > 0) {
        printLine(io);
        printLine(
          io,
          formatTable(
            ['SHARD', 'PENDING', 'FAILING', 'OLDEST', 'HELD BY'],
            shown.map((s) => [s.shard, s.pending, s.failing, formatDuration(s.oldestAgeSeconds), s.heldBy ?? 'nobody']),
          ),
        );
      }
      printLine(io);
      if (instances.length === 0) printLine(io, 'relay instances: none has sent a heartbeat in the last minute');
      else {
        const byHolder = new Map<string, number>();
        for (const s of shards) if (s.heldBy) byHolder.set(s.heldBy, (byHolder.get(s.heldBy) ?? 0) + 1);
        printLine(
          io,
          formatTable(
            ['RELAY INSTANCE', 'HOST', 'PID', 'UP', 'HEARTBEAT', 'SHARDS HELD'],
            instances.map((i) => [
              i.instanceId,
              i.host,
              i.pid,
              formatDuration((Date.now() - i.startedAt.getTime()) / 1000),
              `${formatDuration(i.heartbeatAgeSeconds)} ago`,
              byHolder.get(i.instanceId) ?? 0,
            ]),
          ),
        );
      }
      return EXIT.ok;
    } finally {
      await db.end();
    }
  },
};
