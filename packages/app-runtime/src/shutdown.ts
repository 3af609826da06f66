import type { Logger as PinoLogger } from 'pino';
import { errorMessage } from '@eventbus/core';

/**
 * On SIGTERM or SIGINT (once, however many arrive): runs `stop`, then exits 0. When `stop`
 * takes longer than the grace period plus 5 s (or throws), exits 1 so an orchestrator
 * restarts it instead of waiting on a hung process.
 */
export function exitOnSignals(log: PinoLogger, graceMs: number, stop: () => Promise<void>): void {
  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal, graceMs }, 'shutting down: finishing the work in flight');
    const hardStop = setTimeout(() => {
      log.error({ graceMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, graceMs + 5000);
    hardStop.unref();
    try {
      await stop();
    } catch (error) {
      log.error({ err: errorMessage(error) }, 'shutdown failed');
      process.exit(1);
    }
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
