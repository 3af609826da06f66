import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { EventWriter } from '@eventbus/producer';
import { createTopics, KafkaCollector, PrivateBroker, SASL_USER, startAppProcess, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase } from '@eventbus/dev-services/test';
import { RELAY_MAIN } from './relay-process-fixture.js';

// A managed Kafka's shape: a real broker whose client port speaks SASL_SSL (TLS with its own
// CA, SASL PLAIN), as Confluent Cloud or MSK with SASL. The relay, the DLQ mirror and the CLI
// read the same variables (KAFKA_SSL_CA_FILE, KAFKA_SASL_*); with them they work, with a wrong
// password or without TLS they stop at start with exit 4 naming KAFKA_BROKERS, and a half
// configuration is a config error (exit 2) naming the missing variable.

const MIRROR_MAIN = fileURLToPath(new URL('../../dlq-mirror/dist/main.js', import.meta.url));
const CLI_MAIN = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url));

const broker = new PrivateBroker(19692, { saslSsl: true });
let database: TestDatabase;
let pool: pg.Pool;
const children: ChildProcess[] = [];
const collectors: KafkaCollector[] = [];

beforeAll(async () => {
  await broker.start();
  database = await testDatabase('saslssl');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // The database is dropped WITH (FORCE) at the end: a connection still closing then must not crash the run.
  pool.on('error', () => undefined);
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(collectors.map((c) => c.stop()));
  await pool?.end();
  await database?.drop();
  await broker.destroy();
});

const securedEnv = (overrides: Record<string, string> = {}) => ({
  DATABASE_URL: database.url,
  KAFKA_BROKERS: broker.address,
  KAFKA_SSL_CA_FILE: broker.caFile,
  KAFKA_SASL_MECHANISM: 'plain',
  KAFKA_SASL_USERNAME: SASL_USER.username,
  KAFKA_SASL_PASSWORD: SASL_USER.password,
  ...overrides,
});

async function collect(topic: string): Promise<KafkaCollector> {
  await createTopics([broker.address], [{ topic }], broker.clientSecurity());
  const collector = await new KafkaCollector([broker.address], [topic], broker.clientSecurity()).start();
  collectors.push(collector);
  return collector;
}

describe('a SASL_SSL Kafka', () => {
  it('the relay publishes through it with KAFKA_SSL_CA_FILE and KAFKA_SASL_*', async () => {
    const prefix = `${uniqueName('sasl.')}.`;
    const collector = await collect(`${prefix}order`);
    const relay = startAppProcess(RELAY_MAIN, securedEnv({ EVENTBUS_TOPIC_PREFIX: prefix, RELAY_POLL_INTERVAL_MS: '200' }), children);
    await waitFor(() => relay.child.exitCode === null && /relay ready/.test(relay.output()), { timeoutMs: 30_000, message: `relay ready:\n${relay.output()}` });
    const written = await new EventWriter(drizzle(pool)).writeEventsWithOutbox(
      Array.from({ length: 20 }, (_, i) => ({ tenantId: `t-${i % 3}`, eventKey: `e-${i}`, eventType: 'order.placed', payload: { i } })),
    );
    await collector.waitForEvents(20, 30_000);
    expect([...collector.eventIds()].sort()).toEqual(written.map((w) => w.eventLogId).sort());
    expect(relay.output()).not.toContain(SASL_USER.password);
    relay.child.kill('SIGTERM');
    expect(await relay.exited).toBe(0);
  });

  it('the DLQ mirror joins its group through it', async () => {
    const prefix = `${uniqueName('saslm.')}.`;
    const mirror = startAppProcess(MIRROR_MAIN, securedEnv({ EVENTBUS_TOPIC_PREFIX: prefix, DLQ_MIRROR_GROUPS: 'billing' }), children);
    await waitFor(() => /dlq mirror ready/.test(mirror.output()), { timeoutMs: 40_000, message: 'dlq mirror ready' });
    mirror.child.kill('SIGTERM');
    expect(await mirror.exited, mirror.output()).toBe(0);
  });

  it('eventbus replay republishes through it', async () => {
    const topic = `${uniqueName('saslr.')}.order`;
    const collector = await collect(topic);
    const tenant = uniqueName('replay-');
    await new EventWriter(drizzle(pool)).writeEvent({ tenantId: tenant, eventKey: 'r-1', eventType: 'order.placed', payload: {} });
    const replay = startAppProcess(CLI_MAIN, securedEnv(), children, ['replay', '--tenant', tenant, '--to-topic', topic, '--yes']);
    expect(await replay.exited, replay.output()).toBe(0);
    await collector.waitForEvents(1, 20_000);
  });

  it.each([
    ['a wrong password', { KAFKA_SASL_PASSWORD: 'not-the-password' }, /SASL PLAIN authentication failed/],
    ['no TLS', { KAFKA_SSL_CA_FILE: '' }, /cannot connect to Kafka at/],
  ])('with %s the relay stops at start with exit 4 naming KAFKA_BROKERS', async (_label, overrides, reason) => {
    const relay = startAppProcess(RELAY_MAIN, securedEnv({ RELAY_MIGRATE: 'false', ...overrides }), children);
    const killer = setTimeout(() => relay.child.kill('SIGKILL'), 60_000);
    const code = await relay.exited;
    clearTimeout(killer);
    expect(code, relay.output()).toBe(4);
    expect(relay.output()).toMatch(reason);
    expect(relay.output()).toContain('"setting":"KAFKA_BROKERS"');
    expect(relay.output()).not.toContain('not-the-password');
  });

  it('a half configuration is a config error naming what is missing', async () => {
    const relay = startAppProcess(RELAY_MAIN, securedEnv({ KAFKA_SASL_USERNAME: '', KAFKA_SASL_MECHANISM: 'gssapi' }), children);
    expect(await relay.exited).toBe(2);
    expect(relay.output()).toContain('KAFKA_SASL_MECHANISM="gssapi" is invalid: expected one of plain, scram-sha-256, scram-sha-512');
    expect(relay.output()).toContain('KAFKA_SASL_USERNAME is missing: required with KAFKA_SASL_MECHANISM');
    expect(relay.output()).not.toContain(SASL_USER.password);
  });
});
