// The health server is shared by every deployable in apps/ (see @eventbus/app-runtime).
export { startHttpServer, type HealthEndpoints } from '@eventbus/app-runtime';
