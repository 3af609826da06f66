import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built relay app: tests run it as operators do, as a separate process. */
export const RELAY_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface RunningRelay {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts `node apps/relay/dist/main.js` with only PATH and the given variables; remember to kill it. */
export function startRelayProcess(env: Record<string, string>, children: ChildProcess[]): RunningRelay {
  const child = spawn(process.execPath, [RELAY_MAIN], {
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}
