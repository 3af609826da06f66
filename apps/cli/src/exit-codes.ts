/**
 * The CLI's exit codes, documented in docs/cli.md. Scripts
 * branch on them: 2 means "fix the command line", 3 "the data is not what you think",
 * 4 "try again when the service is back".
 */
export const EXIT = {
  /** Done (also: re-driving a row that was already re-driven, which changes nothing). */
  ok: 0,
  /** Unexpected failure, or the operator answered "no" to a confirmation. */
  failed: 1,
  /** Unknown command or flag, a missing or malformed value, a non-interactive bulk action without --yes. */
  usage: 2,
  /** The command was well-formed but the data does not allow it: an id that does not exist, a row that cannot be re-driven. */
  badData: 3,
  /** Postgres or Kafka could not be reached (or the schema is not migrated). */
  unavailable: 4,
  /** Stopped by Ctrl-C; a replay prints how to resume, a prune what it deleted before it stopped. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
