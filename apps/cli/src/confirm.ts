import { createInterface } from 'node:readline/promises';
import { CliError, usageError } from './cli-error.js';
import type { CliIo } from './io.js';

/**
 * Asks before a bulk action. `--yes` skips the question; without a terminal to ask on
 * (a script, CI), the action is refused rather than guessed: a script must say --yes.
 */
export async function confirmBulkAction(io: CliIo, question: string, yes: boolean): Promise<void> {
  if (yes) return;
  if (!io.stdin.isTTY) throw usageError(`${question} Refusing without --yes: stdin is not a terminal to confirm on.`);
  const rl = createInterface({ input: io.stdin, output: io.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('declined', 'nothing done (not confirmed)');
  } finally {
    rl.close();
  }
}
