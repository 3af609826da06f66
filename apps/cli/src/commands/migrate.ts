import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import { isEventBusError } from '@eventbus/core';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine } from '../io.js';
import { databaseUnreachable } from '../connections.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';

export const migrateCommand: Command = {
  path: ['migrate'],
  summary: 'apply pending schema migrations (advisory-locked, safe beside running relays)',
  help: `Usage: eventbus migrate [--dry-run] [--json]

Applies the pending migrations of the eventbus schema. Several runs at once are safe: they
queue on an advisory lock and the later ones find nothing to do.
  --dry-run   list the pending migrations; apply nothing

Examples:
  DATABASE_URL=postgres://eventbus@db:5432/app eventbus migrate --dry-run
  DATABASE_URL=postgres://eventbus@db:5432/app eventbus migrate

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('migrate', argv, { ...COMMON_FLAGS, ...CONNECTION_FLAGS, 'dry-run': { type: 'boolean' } });
    const settings = new ConnectionSettings(values, io.env);
    const connection = { connectionString: settings.databaseUrl(), connectTimeoutMs: settings.connectTimeoutMs() };
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { pendingMigrations, runMigrations } = await import('@eventbus/schema');
    let applied: number;
    try {
      if (values['dry-run']) {
        const pending = await pendingMigrations(connection);
        if (values.json) printJson(io, { dryRun: true, pending });
        else if (pending.length === 0) printLine(io, 'schema is up to date');
        else printLine(io, `would apply ${pending.length} migration(s):\n${pending.map((m) => `  ${m}`).join('\n')}`);
        return EXIT.ok;
      }
      ({ applied } = await runMigrations({ ...connection, log: (m) => note(io, m), signal: io.signal }));
    } catch (error) {
      if (isEventBusError(error, 'DATABASE_UNAVAILABLE')) throw databaseUnreachable(settings, error);
      if (isEventBusError(error, 'STOPPED')) {
        note(io, error.message);
        return EXIT.interrupted;
      }
      throw error;
    }
    if (values.json) printJson(io, { applied });
    else printLine(io, applied === 0 ? 'schema is up to date' : `applied ${applied} migration(s)`);
    return EXIT.ok;
  },
};
