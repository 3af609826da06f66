import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startAppProcess, TcpProxy, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { RELAY_MAIN } from './relay-process-fixture.js';

// Both long-running services start the same way (app-runtime's exitOnStartFailure): before
// anything else they migrate, or with migrations off check that Postgres answers, within
// DATABASE_CONNECT_TIMEOUT_MS. A Postgres that accepts the connection and never answers is
// exit code 4 with the variable named and the password redacted, never a silent hang; a
// malformed DATABASE_URL is exit code 2 naming the variable. One table for both services,
// so they cannot drift apart.

const MIRROR_MAIN = fileURLToPath(new URL('../../dlq-mirror/dist/main.js', import.meta.url));
const SERVICES = [
  { name: 'eventbus-relay', main: RELAY_MAIN, migrateVariable: 'RELAY_MIGRATE' },
  { name: 'eventbus-dlq-mirror', main: MIRROR_MAIN, migrateVariable: 'DLQ_MIRROR_MIGRATE' },
];
const PASSWORD = 's3cret-pw';

let database: TestDatabase;
/** Accepts connections to Postgres and forwards nothing. */
let silent: TcpProxy;
/** The same in front of the Kafka broker: a Kafka that never answers. */
let silentKafka: TcpProxy;
const children: ChildProcess[] = [];

beforeAll(async () => {
  database = await testDatabase('startup');
  const url = new URL(database.url);
  silent = await new TcpProxy(url.hostname, Number(url.port || 5432)).start();
  silent.setMode('stall');
  const [kafkaHost, kafkaPort] = testServices().kafkaBrokers[0]!.split(':');
  silentKafka = await new TcpProxy(kafkaHost!, Number(kafkaPort)).start();
  silentKafka.setMode('stall');
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await silent?.stop();
  await silentKafka?.stop();
  await database?.drop();
});

/** Runs the service until it exits by itself, failing the test if it is still running after `withinMs`. */
async function exitOf(main: string, env: Record<string, string>, withinMs: number) {
  const started = Date.now();
  const app = startAppProcess(main, { KAFKA_BROKERS: testServices().kafkaBrokers.join(','), ...env }, children);
  const timer = setTimeout(() => app.child.kill('SIGKILL'), withinMs);
  const code = await app.exited;
  clearTimeout(timer);
  return { code, output: app.output(), tookMs: Date.now() - started };
}

/** Milliseconds between the service's log line `from` and its fatal line, by pino's timestamps (the process start not counted). */
function logGapMs(output: string, from: RegExp): number {
  const lines = output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { level: number; time: number; msg: string });
  const start = lines.find((line) => from.test(line.msg));
  const fatal = lines.find((line) => line.level === 60);
  if (!start || !fatal) throw new Error(`no log line ${from} or no fatal line in:\n${output}`);
  return fatal.time - start.time;
}

// The connection is accepted and the first request (ApiVersions) never answered:
// KAFKA_REQUEST_TIMEOUT_MS bounds the wait (10 s by default; 2 s here). Concurrent, so the file
// waits for the longer only.
it.concurrent.each(SERVICES)('$name with a Kafka that never answers: exit 4 naming KAFKA_BROKERS, after KAFKA_REQUEST_TIMEOUT_MS', async ({ main }) => {
  const { code, output } = await exitOf(
    main,
    { DATABASE_URL: database.url, KAFKA_BROKERS: `127.0.0.1:${silentKafka.port}`, KAFKA_REQUEST_TIMEOUT_MS: '2000' },
    60_000,
  );
  expect(code, output).toBe(4);
  expect(output).toContain(`cannot connect to Kafka at 127.0.0.1:${silentKafka.port}`);
  expect(output).toContain('"setting":"KAFKA_BROKERS"');
  // From the end of the migrations (the last step before Kafka) to the exit: the 2 s timeout,
  // not the 10 s default (a margin for a busy machine's late timers).
  const kafkaWaitMs = logGapMs(output, /^migrations: /);
  expect(kafkaWaitMs, output).toBeGreaterThanOrEqual(2000);
  expect(kafkaWaitMs, output).toBeLessThan(8000);
});

describe.each(SERVICES)('$name at start', ({ main, migrateVariable }) => {
  it.each(['true', 'false'])(`with a Postgres that never answers (${migrateVariable}=%s): exit 4 within the connect timeout`, async (migrate) => {
    const { code, output, tookMs } = await exitOf(
      main,
      {
        DATABASE_URL: `postgres://eventbus:${PASSWORD}@127.0.0.1:${silent.port}/app`,
        DATABASE_CONNECT_TIMEOUT_MS: '1500',
        [migrateVariable]: migrate,
      },
      20_000,
    );
    expect(code, output).toBe(4);
    expect(output).toContain(`cannot connect to Postgres at postgres://eventbus:***@127.0.0.1:${silent.port}/app: no answer within 1500 ms`);
    expect(output).toContain('"setting":"DATABASE_URL"');
    expect(output).not.toContain(PASSWORD);
    expect(tookMs).toBeGreaterThanOrEqual(1500);
    expect(tookMs).toBeLessThan(10_000);
  });

  it('with a non-numeric port in DATABASE_URL: exit 2 naming the variable, password redacted', async () => {
    const { code, output } = await exitOf(main, { DATABASE_URL: `postgres://eventbus:${PASSWORD}@127.0.0.1:abc/app` }, 20_000);
    expect(code, output).toBe(2);
    expect(output).toContain('DATABASE_URL is invalid: postgres://eventbus:***@127.0.0.1:abc/app is not a URL');
    expect(output).not.toContain(PASSWORD);
  });

  it('with a reachable Postgres and migrations off: starts (the check is not in the way)', async () => {
    const app = startAppProcess(
      main,
      { DATABASE_URL: database.url, KAFKA_BROKERS: testServices().kafkaBrokers.join(','), [migrateVariable]: 'false', DATABASE_CONNECT_TIMEOUT_MS: '1500' },
      children,
    );
    await waitFor(
      () => {
        if (app.child.exitCode !== null) throw new Error(`exited ${app.child.exitCode}:\n${app.output()}`);
        return /ready: \/livez/.test(app.output());
      },
      { timeoutMs: 30_000, message: 'the service to log that it is ready' },
    );
    app.child.kill('SIGTERM');
    expect(await app.exited).toBe(0);
  });
});
