import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startAppProcess, type AppProcess } from '@eventbus/dev-services';

/** The built relay app: tests run it as operators do, as a separate process. */
export const RELAY_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export type RunningRelay = AppProcess;

/** Starts `node apps/relay/dist/main.js` with only PATH and the given variables; remember to kill it. */
export function startRelayProcess(env: Record<string, string>, children: ChildProcess[]): RunningRelay {
  return startAppProcess(RELAY_MAIN, env, children);
}
