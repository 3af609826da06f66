import type { ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';

/** One `eventbus` command: its words (`dlq list`), a one-line summary, full help with an example, and what it does. */
export interface Command {
  path: readonly string[];
  summary: string;
  help: string;
  run(argv: string[], io: CliIo): Promise<ExitCode>;
}
