#!/usr/bin/env node
/**
 * The deployable relay: reads the environment, wires @eventbus/relay, serves health and
 * metrics, and shuts down cleanly on SIGTERM/SIGINT. No logic of its own beyond wiring.
 */
import pg from 'pg';
import { APP_EXIT, createServiceLogger, exitOnSignals, exitOnStartFailure, libraryLogger, startHttpServer } from '@eventbus/app-runtime';
import { observeRelayGauges, OutboxRelay } from '@eventbus/relay';
import { checkDatabase, runMigrations } from '@eventbus/schema/migrate';
import { ConfigError, loadConfig, type RelayAppConfig } from './config.js';
import { startTelemetry } from '@eventbus/telemetry';

let config: RelayAppConfig;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`eventbus-relay: ${error.message}\nSee the relay's environment table in docs/operators.md.\n`);
    process.exit(APP_EXIT.config);
  }
  throw error;
}

const log = createServiceLogger('eventbus-relay', config.logLevel);
const logger = libraryLogger(log);

async function main(cfg: RelayAppConfig) {
  // First: the relay's instruments bind to the meter provider that is global when it is created.
  const telemetry = await startTelemetry({ serviceName: 'eventbus-relay', prometheus: true });
  // Either way Postgres must answer within the connect timeout, or the start fails with exit code 4.
  const database = { connectionString: cfg.databaseUrl, connectTimeoutMs: cfg.connectTimeoutMs };
  if (cfg.migrate) await runMigrations({ ...database, log: (m) => log.info(m) });
  else await checkDatabase(database);
  const relay = new OutboxRelay({
    connectionString: cfg.databaseUrl,
    connectTimeoutMs: cfg.connectTimeoutMs,
    brokers: cfg.brokers,
    connection: { ...cfg.kafkaSecurity, requestTimeoutMs: cfg.kafkaRequestTimeoutMs },
    clientId: cfg.clientId,
    batchSize: cfg.batchSize,
    lanes: cfg.lanes,
    pollIntervalMs: cfg.pollIntervalMs,
    rebalanceIntervalMs: cfg.rebalanceIntervalMs,
    kafkaFailoverMs: cfg.kafkaFailoverMs,
    kafkaIdempotent: cfg.kafkaIdempotent,
    createTopics: cfg.createTopics,
    retryConfig: cfg.retryConfig,
    missingTopicHold: cfg.missingTopicHold,
    routing: { prefix: cfg.topicPrefix, ...(cfg.topicRoutes ? { routes: cfg.topicRoutes } : {}) },
    shutdownGraceMs: cfg.shutdownGraceMs,
    logger,
    ...(cfg.instanceId ? { instanceId: cfg.instanceId } : {}),
  });
  // A small pool for the metrics' backlog and DLQ queries, apart from the relay's claim connections.
  const metricsPool = new pg.Pool({
    connectionString: cfg.databaseUrl,
    max: 1,
    connectionTimeoutMillis: cfg.connectTimeoutMs,
    application_name: 'eventbus-relay-metrics',
  });
  metricsPool.on('error', (error) => log.warn({ err: error.message }, 'metrics connection error'));

  const stopGauges = observeRelayGauges({ relay, pool: metricsPool, logger });
  await relay.start();
  const http = await startHttpServer(cfg.httpHost, cfg.httpPort, {
    live: () => relay.health().live,
    ready: () => ({ ...relay.health() }),
    metrics: () => telemetry.prometheus!.text(),
  });
  log.info({ port: http.port, instanceId: relay.instanceId, otlp: telemetry.exporting }, 'relay ready: /livez /readyz /metrics');

  exitOnSignals(log, cfg.shutdownGraceMs, async () => {
    await relay.stop();
    await new Promise<void>((resolve) => http.server.close(() => resolve()));
    stopGauges();
    await metricsPool.end();
    // Flushes spans still buffered for the OTLP exporter (bounded by the hard stop).
    await telemetry.shutdown().catch((error: Error) => log.warn({ err: error.message }, 'telemetry shutdown failed'));
  });
}

main(config).catch((error: unknown) => exitOnStartFailure(log, 'relay', error));
