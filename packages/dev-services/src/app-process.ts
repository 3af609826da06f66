import { spawn, type ChildProcess } from 'node:child_process';

/** A deployable (apps/<name>/dist/main.js) started by a test, as operators run it. */
export interface AppProcess {
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  /** Its exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

/**
 * Starts `node <main>` with only PATH, `HTTP_PORT=0`, `LOG_LEVEL=info` and the given
 * variables (so nothing leaks in from the test's own environment), and adds it to `children`
 * for the test file to kill in its afterAll.
 */
export function startAppProcess(main: string, env: Record<string, string>, children: ChildProcess[], args: string[] = []): AppProcess {
  const child = spawn(process.execPath, [main, ...args], {
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
