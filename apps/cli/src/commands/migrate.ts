import { COMMON_FLAGS, parseCommandArgs } from '../args.js';
import { CliError } from '../cli-error.js';
import type { Command } from '../command.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings, redactUrl } from '../settings.js';

export const migrateCommand: Command = {
  path: ['migrate'],
  summary: 'apply pending schema migrations (advisory-locked, safe beside running relays)',
  help: `Usage: eventbus migrate [--json]

Applies the pending migrations of the eventbus schema. Several runs at once are safe: they
queue on an advisory lock and the later ones find nothing to do.

Example:
  DATABASE_URL=postgres://eventbus@db:5432/app eventbus migrate

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('migrate', argv, { ...COMMON_FLAGS, ...CONNECTION_FLAGS });
    const url = new ConnectionSettings(values, io.env).databaseUrl();
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { runMigrations } = await import('@eventbus/schema');
    let applied: number;
    try {
      ({ applied } = await runMigrations({ connectionString: url, log: (m) => note(io, m) }));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code && /^(ECONN|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|08|57P0|3D000|28)/.test(code)) {
        throw new CliError('unavailable', `Postgres at ${redactUrl(url)} is unreachable: ${(error as Error).message}`, { cause: error });
      }
      throw error;
    }
    if (values.json) printJson(io, { applied });
    else printLine(io, applied === 0 ? 'schema is up to date' : `applied ${applied} migration(s)`);
    return EXIT.ok;
  },
};
