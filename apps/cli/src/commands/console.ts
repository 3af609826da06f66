import { COMMON_FLAGS, intFlag, listFlag, parseCommandArgs } from '../args.js';
import type { Command } from '../command.js';
import { usageError } from '../cli-error.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printLine } from '../io.js';
import { CONNECTION_FLAGS, CONNECTION_HELP, ConnectionSettings } from '../settings.js';

const FLAGS = {
  ...COMMON_FLAGS,
  ...CONNECTION_FLAGS,
  host: { type: 'string' },
  port: { type: 'string' },
  groups: { type: 'string' },
} as const;

export const consoleCommand: Command = {
  path: ['console'],
  summary: 'serve the web console: live pipeline, dead letters (retry, discard), replay',
  help: `Usage: eventbus console [--port 8080] [--host 127.0.0.1] [--groups g1,g2]

Serves the operator console until Ctrl-C:
  pipeline      written / published / consumed per second, backlog and oldest pending age
                per shard, relay instances and their shards, consumer-group lag per partition
  dead letters  filter, open, retry or discard one or a selection
  replay        count (dry run), start at a rate, follow, stop
It reads and acts through the same functions as \`eventbus stats\`, \`outbox status\`, \`dlq …\`
and \`replay\`.

  --host <addr>     address to bind (default 127.0.0.1). Anything but 127.0.0.1, ::1 or
                    localhost requires EVENTBUS_CONSOLE_TOKEN (at least 16 characters), and
                    then every request must carry it (Authorization: Bearer, or the login page)
  --port <n>        port (default 8080; 0 = a free one)
  --groups <list>   consumer groups whose lag to show (default: the cluster's, at most 50)
  --json            print {"url": …} on stdout once it listens
Environment: EVENTBUS_CONSOLE_TOKEN (required off loopback; honoured on loopback too).
Without KAFKA_BROKERS the console runs without lag, consumer-stage retries and replays.

Example:
  eventbus console --port 8080
  EVENTBUS_CONSOLE_TOKEN=$(openssl rand -hex 24) eventbus console --host 0.0.0.0

${CONNECTION_HELP}`,
  async run(argv, io) {
    const { values } = parseCommandArgs('console', argv, FLAGS);
    const { resolveConsoleBinding } = await import('@eventbus/console');
    // Refused before anything connects: a non-loopback bind without a token never starts (exit 2).
    const binding = resolveConsoleBinding({
      host: values.host,
      port: intFlag('port', values.port, 0, 65_535) ?? 8080,
      token: io.env.EVENTBUS_CONSOLE_TOKEN?.trim(),
    });
    const groups = listFlag(values.groups);
    // Libraries load only when the command runs: after the flags are checked, so --help and usage errors answer at once.
    const { startConsole } = await import('@eventbus/console');
    const { ConsumerGroupLagReader } = await import('@eventbus/kafka');
    const { LazyPublisher, openDatabase } = await import('../connections.js');
    const settings = new ConnectionSettings(values, io.env);
    const routing = settings.routing();
    const kafkaConfigured = (values.brokers ?? io.env.KAFKA_BROKERS ?? '').trim() !== '';
    const brokers = kafkaConfigured ? settings.brokers() : undefined;
    const security = kafkaConfigured ? settings.kafkaSecurity() : undefined;
    const db = await openDatabase(settings);
    const publisher = brokers
      ? new LazyPublisher(() => brokers, settings.clientId(), { setting: settings.brokersSetting(), connection: () => security })
      : undefined;
    const lag = brokers
      ? new ConsumerGroupLagReader({ brokers, clientId: `${settings.clientId()}-console`, ...(security ? { connection: security } : {}) })
      : undefined;
    try {
      const server = await startConsole({
        pool: db,
        ...binding,
        routing,
        ...(publisher ? { publisher } : {}),
        ...(lag ? { lag } : {}),
        ...(groups.length > 0 ? { groups } : {}),
        describeConnections: { database: settings.databaseUrl(), ...(brokers ? { brokers } : {}) },
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE' || error.code === 'EADDRNOTAVAIL' || error.code === 'EACCES') {
          throw usageError(`cannot listen on ${binding.host}:${binding.port} (${error.code}): choose another --port or --host`);
        }
        throw error;
      });
      if (values.json) printJson(io, { url: server.url });
      else printLine(io, `eventbus console: ${server.url}${binding.token ? ' (token required)' : ''}`);
      note(io, 'Ctrl-C stops it');
      await new Promise<void>((resolve) => {
        if (io.signal.aborted) resolve();
        else io.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await server.stop();
      return EXIT.ok;
    } finally {
      await lag?.disconnect().catch(() => undefined);
      await publisher?.disconnect().catch(() => undefined);
      await db.end();
    }
  },
};
