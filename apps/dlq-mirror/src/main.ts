#!/usr/bin/env node
/**
 * The deployable DLQ mirror: reads the environment, runs @eventbus/dead-letters' DlqMirror
 * (every consumer group's `{prefix}dlq.{group}` topic → eventbus.dead_letters, idempotent
 * per record), serves health and metrics, and on SIGTERM/SIGINT stops consuming, commits
 * what it wrote and exits 0. No logic of its own beyond wiring.
 */
import pg from 'pg';
import { APP_EXIT, createServiceLogger, exitOnSignals, exitOnStartFailure, libraryLogger, startHttpServer } from '@eventbus/app-runtime';
import { deadLetterTablesReady, DlqMirror } from '@eventbus/dead-letters';
import { errorMessage } from '@eventbus/core';
import { checkDatabase, runMigrations } from '@eventbus/schema/migrate';
import { ConfigError, loadConfig, type DlqMirrorAppConfig } from './config.js';
import { probeBrokers } from './probes.js';
import { renderPrometheus } from './prometheus.js';

const PROBE_INTERVAL_MS = 5000;

let config: DlqMirrorAppConfig;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`eventbus-dlq-mirror: ${error.message}\nSee the DLQ mirror's environment table in docs/operators.md.\n`);
    process.exit(APP_EXIT.config);
  }
  throw error;
}

const log = createServiceLogger('eventbus-dlq-mirror', config.logLevel);

async function main(cfg: DlqMirrorAppConfig) {
  // Either way Postgres must answer within the connect timeout, or the start fails with exit code 4.
  const database = { connectionString: cfg.databaseUrl, connectTimeoutMs: cfg.connectTimeoutMs };
  if (cfg.migrate) await runMigrations({ ...database, log: (m) => log.info(m) });
  else await checkDatabase(database);
  // One pool for the mirror's inserts (one partition batch at a time), the probes and /metrics.
  const pool = new pg.Pool({
    connectionString: cfg.databaseUrl,
    max: 3,
    connectionTimeoutMillis: cfg.connectTimeoutMs,
    application_name: 'eventbus-dlq-mirror',
  });
  pool.on('error', (error) => log.warn({ err: error.message }, 'postgres connection error'));

  const mirror = new DlqMirror({
    brokers: cfg.brokers,
    connection: { ...cfg.kafkaSecurity, requestTimeoutMs: cfg.kafkaRequestTimeoutMs },
    pool,
    routing: { prefix: cfg.topicPrefix },
    groupId: cfg.groupId,
    clientId: cfg.clientId,
    topicPartitions: cfg.topicPartitions,
    unstorableAttempts: cfg.unstorableAttempts,
    logger: libraryLogger(log),
    ...(cfg.groups ? { groups: cfg.groups } : {}),
  });
  await mirror.start();
  let running = true;

  const checks = { postgres: false, kafka: false };
  const probe = async () => {
    const [postgres, kafka] = await Promise.all([deadLetterTablesReady(pool), probeBrokers(cfg.brokers, 2000)]);
    if (postgres !== checks.postgres || kafka !== checks.kafka) log.info({ postgres, kafka }, 'dependency checks changed');
    Object.assign(checks, { postgres, kafka });
  };
  await probe();
  const probes = setInterval(() => void probe(), PROBE_INTERVAL_MS);
  probes.unref();

  const dlqQueryFailures = {
    count: 0,
    onFailure: (error: unknown) => log.warn({ err: errorMessage(error) }, 'dead-letter gauges left out of /metrics: their query failed'),
  };
  const http = await startHttpServer(cfg.httpHost, cfg.httpPort, {
    live: () => running,
    ready: () => ({ ready: running && checks.postgres && checks.kafka, checks: { ...checks, consuming: running }, mirrored: mirror.mirrored }),
    metrics: () => renderPrometheus(mirror, pool, dlqQueryFailures),
  });
  log.info({ port: http.port, groupId: cfg.groupId, groups: cfg.groups ?? `${cfg.topicPrefix}dlq.*` }, 'dlq mirror ready: /livez /readyz /metrics');

  exitOnSignals(log, cfg.shutdownGraceMs, async () => {
    running = false;
    clearInterval(probes);
    // Waits for the batch in flight, commits the offsets it resolved, leaves the group.
    await mirror.stop();
    await new Promise<void>((resolve) => http.server.close(() => resolve()));
    await pool.end();
    log.info({ mirrored: mirror.mirrored }, 'mirror stopped, offsets committed');
  });
}

main(config).catch((error: unknown) => exitOnStartFailure(log, 'dlq mirror', error));
