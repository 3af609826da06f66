/**
 * Where a command writes. stdout carries the result only (a table, or with --json one
 * JSON document); everything else (notes, progress, errors) goes to stderr, so
 * `eventbus … --json | jq` always parses.
 */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
  /** Runs a command inside a span (set when OpenTelemetry exports); absent = just run it. */
  traced?: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
}

export function printJson(io: CliIo, data: unknown): void {
  io.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

export function printLine(io: CliIo, text = ''): void {
  io.stdout.write(`${text}\n`);
}

export function note(io: CliIo, text: string): void {
  io.stderr.write(`${text}\n`);
}
