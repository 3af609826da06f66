export { SERVICE_ENV, LOG_LEVELS, ConfigError, EnvReader, type EnvTable, type EnvVar } from './env.js';
export { createServiceLogger, libraryLogger, REDACTED_LOG_PATHS } from './logger.js';
export { startHttpServer, type HealthEndpoints } from './http-server.js';
export { exitOnSignals } from './shutdown.js';
export { APP_EXIT, exitOnStartFailure } from './startup.js';
