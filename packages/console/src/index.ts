export { startConsole, type ConsoleServer } from './console-server.js';
export {
  resolveConsoleOptions,
  resolveConsoleBinding,
  type ConsoleBinding,
  isLoopbackHost,
  MIN_TOKEN_LENGTH,
  type ConsoleOptions,
  type LagSource,
} from './options.js';
export { PipelineMonitor, FLOW_WINDOW_SECONDS, type PipelineSnapshot } from './pipeline-monitor.js';
export { ReplayJobs, type ReplayJob, type ConsoleReplayTarget } from './replay-jobs.js';
export { CSRF_HEADER, SESSION_COOKIE, redactSecrets } from './security.js';
