#!/usr/bin/env node
/**
 * The `eventbus` operator CLI. Wiring only: commands live in commands/, the work in the
 * libraries (@eventbus/replay, @eventbus/consumer's dead-letter admin, @eventbus/relay's
 * backlog query, @eventbus/schema's migrations).
 */
import { runCli } from './cli.js';
import { EXIT } from './exit-codes.js';

// Ctrl-C once: commands stop at their next safe point (a replay after the page in flight)
// and report; twice: leave now.
const controller = new AbortController();
process.on('SIGINT', () => {
  if (controller.signal.aborted) process.exit(EXIT.interrupted);
  process.stderr.write('\nstopping after the page in flight (Ctrl-C again to quit at once)…\n');
  controller.abort();
});
process.on('SIGTERM', () => controller.abort());

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
  env: process.env,
  signal: controller.signal,
});
// Let stdout drain (a large --json document into a pipe) before exiting.
process.exitCode = code;
if (!process.stdout.writableNeedDrain) process.exit(code);
else process.stdout.once('drain', () => process.exit(code));
