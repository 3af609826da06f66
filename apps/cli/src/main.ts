#!/usr/bin/env node
/**
 * The `eventbus` operator CLI. Wiring only: commands live in commands/, the work in the
 * libraries (@eventbus/outbox's statements on the EventLog and the outbox, @eventbus/replay,
 * @eventbus/dead-letters, @eventbus/schema's migrations).
 */
// First: the global console writes to stderr (see stderr-console.ts).
import './stderr-console.js';
import { runCli } from './cli.js';
import { EXIT } from './exit-codes.js';

// Ctrl-C once: commands stop at their next safe point (a replay after the page in flight, a prune after its batch)
// and report; twice: leave now.
const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(EXIT.interrupted);
  process.stderr.write('\nstopping after the replay page or prune batch in flight (Ctrl-C again to quit at once)…\n');
  controller.abort();
});
// SIGTERM (a supervisor or `timeout`): the same safe stop, but a command still busy after 10 s
// (a query the server never answers) exits anyway: a supervisor's stop must not hang.
process.on('SIGTERM', () => {
  if (controller.signal.aborted) process.exit(EXIT.interrupted);
  controller.abort();
  setTimeout(() => process.exit(EXIT.interrupted), 10_000).unref();
});

const telemetry = await startTelemetryIfAsked(process.env);
const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: controller.signal,
  ...(telemetry ? { traced: telemetry.traced } : {}),
});
// Spans still buffered go out before the process ends.
await telemetry?.shutdown().catch((error: Error) => process.stderr.write(`eventbus: telemetry shutdown failed: ${error.message}\n`));
// Let stdout drain (a large --json document into a pipe) before exiting.
process.exitCode = code;
if (!process.stdout.writableNeedDrain) process.exit(code);
else process.stdout.once('drain', () => process.exit(code));

/**
 * OpenTelemetry, as the relay app starts it, when the standard OTEL_* variables ask for an
 * exporter. The telemetry package (and the SDK) load only then: a CLI that starts for a
 * --help or a usage error must not pay for them. Each command runs in a span
 * (`eventbus replay`, …) that the replay's `send` spans belong to.
 */
async function startTelemetryIfAsked(env: NodeJS.ProcessEnv) {
  if (!Object.keys(env).some((name) => name.startsWith('OTEL_'))) return undefined;
  const { otelExportRequested, startTelemetry, withSpan } = await import('@eventbus/telemetry');
  if (!otelExportRequested(env)) return undefined;
  const telemetry = await startTelemetry({ serviceName: 'eventbus-cli', env });
  return {
    traced: <T>(name: string, fn: () => Promise<T>) => withSpan(name, fn, { tracer: '@eventbus/cli' }),
    shutdown: () => telemetry.shutdown(),
  };
}
