import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { errorMessage, isEventBusError, redactUrl, silentLogger, TopicRouter } from '@eventbus/core';
import { resolveConsoleOptions, type ConsoleOptions, type ResolvedConsoleOptions } from './options.js';
import { PipelineMonitor } from './pipeline-monitor.js';
import { ReplayJobs } from './replay-jobs.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { replayRoutes } from './routes/replays.js';
import { ConsoleSecurity, redactSecrets, SESSION_COOKIE } from './security.js';
import { loadAssets, renderPage, type Asset } from './static-assets.js';

/** A running console. */
export interface ConsoleServer {
  /** Where to open it, e.g. http://127.0.0.1:8080/ */
  readonly url: string;
  /** Stops running replays and closes the server. Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

// A nonce per page allows the import map and the page's module; nothing inline besides.
const contentSecurityPolicy = (nonce: string) =>
  `default-src 'self'; script-src 'self' 'nonce-${nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'`;

/**
 * Starts the operator console: a Hono app on Node's HTTP server. Resolves once it listens;
 * rejects with INVALID_CONFIG for options that must not run (a non-loopback bind without a
 * token) and with the listen error (EADDRINUSE) otherwise.
 */
export async function startConsole(options: ConsoleOptions): Promise<ConsoleServer> {
  const resolved = resolveConsoleOptions(options);
  const routing = resolved.routing ?? {};
  const security = new ConsoleSecurity(resolved.token, resolved.loopback);
  const jobs = new ReplayJobs(resolved.pool, resolved.publisher, routing);
  const monitor = new PipelineMonitor(resolved.pool, resolved.lag, resolved.groups);
  const assets = await loadAssets();
  const app = buildApp(resolved, security, monitor, jobs, assets);

  const server = createAdaptorServer({ fetch: app.fetch, hostname: resolved.host, port: resolved.port });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostInUrl = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await jobs.stopAll();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
    })());
  return { url: `http://${hostInUrl}:${port}/`, stop, [Symbol.asyncDispose]: stop };
}

function buildApp(
  options: ResolvedConsoleOptions,
  security: ConsoleSecurity,
  monitor: PipelineMonitor,
  jobs: ReplayJobs,
  assets: { index: string; login: string; files: Map<string, Asset> },
): Hono {
  const logger = options.logger ?? silentLogger;
  const app = new Hono();
  app.use('*', async (c, next) => {
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
    if (c.req.path.startsWith('/api/')) c.header('Cache-Control', 'no-store');
  });
  app.use('*', security.middleware());
  app.onError((error, c) => {
    if (isEventBusError(error, 'INVALID_CONFIG') || isEventBusError(error, 'INVALID_EVENT_TYPE')) return c.json({ error: error.message }, 400);
    logger.error({ err: errorMessage(error), path: c.req.path }, 'console request failed');
    return c.json({ error: redactSecrets(errorMessage(error)) }, 500);
  });

  const page = (template: string) => (c: Context) => {
    const nonce = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64');
    c.header('Content-Security-Policy', contentSecurityPolicy(nonce));
    c.header('Cache-Control', 'no-store');
    return c.html(renderPage(template, { csrf: security.csrfToken, nonce }));
  };
  app.get('/', page(assets.index));
  app.get('/login', page(assets.login));
  app.post('/login', async (c) => {
    const body = await c.req.parseBody();
    const session = typeof body.token === 'string' ? security.login(body.token) : undefined;
    if (!session) return c.redirect('/login?failed=1', 303);
    setCookie(c, SESSION_COOKIE, session, { httpOnly: true, sameSite: 'Strict', path: '/' });
    return c.redirect('/', 303);
  });
  for (const [path, asset] of assets.files) app.get(path, (c) => c.body(asset.body, 200, { 'Content-Type': asset.type, 'Cache-Control': 'no-cache' }));

  app.get('/api/info', (c) =>
    c.json({
      database: options.describeConnections?.database ? redactUrl(options.describeConnections.database) : null,
      brokers: options.describeConnections?.brokers ?? null,
      kafka: options.publisher !== undefined,
      topicPrefix: new TopicRouter(options.routing ?? {}).prefix,
      tokenRequired: security.requiresToken,
    }),
  );
  app.get('/api/pipeline', async (c) => c.json(await monitor.snapshot()));
  deadLetterRoutes(app, options.pool, options.publisher, options.routing ?? {});
  replayRoutes(app, jobs);
  return app;
}
