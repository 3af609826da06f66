import { describeFailure, usageError } from './cli-error.js';
import type { Command } from './command.js';
import { COMMANDS } from './commands/index.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import type { CliIo } from './io.js';

export const EXIT_CODE_HELP = `Exit codes:
  0    success
  1    unexpected failure, or a confirmation answered "no"
  2    usage error: unknown command or flag, bad value, bulk action without --yes in a script
  3    bad data: the id or event does not exist, or the row cannot be acted on
  4    service unavailable: Postgres or Kafka unreachable, or the schema not migrated
  130  interrupted (Ctrl-C); replay prints how to resume, prune what it deleted`;

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.path.join(' ').length));
  return `eventbus: operate the transactional-outbox event bus (Postgres → relay → Kafka → consumer groups)

Usage: eventbus <command> [flags]        eventbus <command> --help

Commands:
${COMMANDS.map((c) => `  ${c.path.join(' ').padEnd(width)}  ${c.summary}`).join('\n')}

--json prints only data on stdout; logs, progress and errors go to stderr.
Connection: DATABASE_URL, KAFKA_BROKERS, EVENTBUS_TOPIC_PREFIX, EVENTBUS_TOPIC_ROUTES (as the relay), or flags.

Example:
  eventbus outbox status

${EXIT_CODE_HELP}`;
}

/** Finds the command whose words start argv (`dlq list …`); the rest are its flags. */
function findCommand(argv: string[]): { command: Command; rest: string[] } | { group: string } | undefined {
  for (const command of COMMANDS) {
    if (command.path.every((word, i) => argv[i] === word)) return { command, rest: argv.slice(command.path.length) };
  }
  const group = argv[0];
  if (group && COMMANDS.some((c) => c.path.length > 1 && c.path[0] === group)) return { group };
  return undefined;
}

function groupHelp(group: string): string {
  const commands = COMMANDS.filter((c) => c.path[0] === group);
  return `Usage: eventbus ${group} <${commands.map((c) => c.path[1]).join('|')}> [flags]

${commands.map((c) => `  ${c.path.join(' ').padEnd(18)}  ${c.summary}`).join('\n')}

Example:
  eventbus ${commands[0]!.path.join(' ')} --help`;
}

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      const topic = argv[0] === 'help' ? argv.slice(1) : [];
      const found = topic.length > 0 ? findCommand(topic) : undefined;
      if (found && 'command' in found) io.stdout.write(`${found.command.help}\n`);
      else if (found) io.stdout.write(`${groupHelp(found.group)}\n`);
      else io.stdout.write(`${mainHelp()}\n`);
      return argv.length === 0 ? EXIT.usage : EXIT.ok;
    }
    const found = findCommand(argv);
    if (!found) throw usageError(`unknown command ${JSON.stringify(argv[0]!.slice(0, 80))}; see: eventbus --help`);
    if ('group' in found) {
      const wantsHelp = argv[1] === undefined || argv[1] === '--help' || argv[1] === '-h';
      if (wantsHelp) {
        io.stdout.write(`${groupHelp(found.group)}\n`);
        return argv[1] === undefined ? EXIT.usage : EXIT.ok;
      }
      throw usageError(`unknown command ${JSON.stringify(`${found.group} ${argv[1]!.slice(0, 80)}`)}; see: eventbus ${found.group} --help`);
    }
    if (found.rest.includes('--help') || found.rest.includes('-h')) {
      io.stdout.write(`${found.command.help}\n`);
      return EXIT.ok;
    }
    const command = found.command;
    const run = () => command.run(found.rest, io);
    return await (io.traced ? io.traced(`eventbus ${command.path.join(' ')}`, run) : run());
  } catch (error) {
    const { exitCode, message } = describeFailure(error);
    io.stderr.write(`eventbus: ${message}\n`);
    return exitCode;
  }
}
