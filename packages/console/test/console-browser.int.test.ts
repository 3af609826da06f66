import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isEventBusError, NonRetriableError } from '@eventbus/core';
import { EventConsumer } from '@eventbus/consumer';
import { DlqMirror } from '@eventbus/dead-letters';
import { createTopics, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { ConsumerGroupLagReader, KafkaPublisher } from '@eventbus/kafka';
import { EventWriter } from '@eventbus/producer';
import { OutboxRelay } from '@eventbus/relay';
import { shardForTenant } from '@eventbus/schema';
import { startConsole, type ConsoleServer } from '../src/index.js';

const ENSURE_CHROMIUM = fileURLToPath(new URL('../../../scripts/ensure-chromium.sh', import.meta.url));
/**
 * Where the screenshots go: docs/images/ with CONSOLE_SCREENSHOTS=docs (to refresh the docs'
 * pictures), else a temporary directory, so a test run leaves the checkout unchanged.
 */
const SCREENSHOTS =
  process.env.CONSOLE_SCREENSHOTS === 'docs'
    ? fileURLToPath(new URL('../../../docs/images/', import.meta.url))
    : `${mkdtempSync(join(tmpdir(), 'eventbus-console-'))}/`;
const TOKEN = 'console-test-token-0123456789';

/**
 * The console in a real browser (Debian's chromium through playwright-core) while a real
 * pipeline runs: EventWriter → OutboxRelay → Kafka → an EventConsumer group that refuses
 * one tenant's events → its DLQ topic → DlqMirror → eventbus.dead_letters.
 */
let database: TestDatabase;
let pool: pg.Pool;
let browser: Browser;
let consoleServer: ConsoleServer;
let relay: OutboxRelay;
const stops: Array<() => Promise<unknown>> = [];
/** Uncaught errors of the page's scripts: each test ends with none. */
const pageErrors: string[] = [];
afterEach(() => {
  expect(pageErrors.splice(0), 'errors thrown in the page').toEqual([]);
});
const prefix = `${uniqueName('console.')}.`;
const billing = uniqueName('billing-');
const goodTenant = uniqueName('shop-');
const badTenant = uniqueName('broken-');
/** Event ids the billing group handled, and the ids it is allowed to handle although their tenant is refused. */
const handled = new Set<string>();
const forgiven = new Set<string>();
/** Calls of the billing handler for the accepted tenant (a replay calls it again for the same ids). */
let goodCalls = 0;

let executablePath: string;
// Its own hook with a long timeout: on a fresh machine the script installs chromium with apt-get first.
beforeAll(async () => {
  const { stdout } = await promisify(execFile)('bash', [ENSURE_CHROMIUM], { encoding: 'utf8', timeout: 590_000, maxBuffer: 16 * 1024 * 1024 });
  executablePath = stdout.trim();
}, 600_000);

beforeAll(async () => {
  database = await testDatabase('console');
  pool = new pg.Pool({ connectionString: database.url, max: 8 });
  pool.on('error', () => undefined); // the final DROP DATABASE (FORCE) ends idle clients
  const { kafkaBrokers: brokers } = testServices();
  await createTopics(
    brokers,
    [`${prefix}order`, `${prefix}retry.${billing}`, `${prefix}dlq.${billing}`].map((topic) => ({ topic, numPartitions: 3 })),
  );

  // Started by the first test once a backlog has built up (stop() is safe before start()).
  relay = new OutboxRelay({ connectionString: database.url, brokers, routing: { prefix }, instanceId: 'console-test-relay', pollIntervalMs: 200 });
  stops.push(() => relay.stop());
  const consumer = new EventConsumer({ brokers, groupId: billing, routing: { prefix }, fromBeginning: true, topicPartitions: 3, onMetric: () => {} });
  consumer.subscribe({
    eventTypes: ['order.*'],
    name: 'charge',
    handler: async (event) => {
      if (event.tenantId === badTenant && !forgiven.has(event.id)) throw new NonRetriableError('card processor declined: 503');
      if (event.tenantId === goodTenant) goodCalls++;
      handled.add(event.id);
    },
  });
  await consumer.start();
  stops.push(() => consumer.stop());
  const mirror = new DlqMirror({ brokers, pool, routing: { prefix }, groups: [billing], groupId: uniqueName('mirror-'), topicPartitions: 3 });
  await mirror.start();
  stops.push(() => mirror.stop());

  const publisher = new KafkaPublisher({ brokers });
  await publisher.connect();
  stops.push(() => publisher.disconnect());
  const lag = new ConsumerGroupLagReader({ brokers });
  stops.push(() => lag.disconnect());
  consoleServer = await startConsole({
    pool,
    publisher,
    lag,
    groups: [billing],
    routing: { prefix },
    port: 0,
    describeConnections: { database: database.url, brokers },
  });
  stops.push(() => consoleServer.stop());
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
  stops.push(() => browser.close());
  mkdirSync(SCREENSHOTS, { recursive: true });
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await pool?.end();
  await database?.drop();
});

async function openPage(url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  return page;
}

const numberIn = async (page: Page, testId: string) => Number((await page.getByTestId(testId).textContent())!.replace(/,/g, ''));
/** The lines a chart draws (its data-series attribute: the legend's labels). */
const linesOf = async (chart: Locator) => ((await chart.getAttribute('data-series')) ?? '').split(' | ');
/** The chart's canvas as an image: it changes when uPlot draws new points. */
const pixelsOf = (chart: Locator) => chart.locator('canvas').evaluate((canvas: HTMLCanvasElement) => canvas.toDataURL());

/** Writes a batch every 100 ms (one event in ten of the refused tenant) until stopped. */
function startWriting(): { stop: () => Promise<{ good: number; bad: number }> } {
  const writer = new EventWriter(drizzle(pool));
  let running = true;
  const counts = { good: 0, bad: 0 };
  const loop = (async () => {
    for (let batch = 0; running; batch++) {
      const events = Array.from({ length: 10 }, (_, i) => ({
        tenantId: i === 0 ? badTenant : goodTenant,
        eventKey: `order-${batch}-${i}`,
        eventType: 'order.placed',
        payload: { batch, i, total: 10 + i },
      }));
      await writer.writeEventsWithOutbox(events);
      counts.bad += 1;
      counts.good += 9;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return counts;
    },
  };
}

describe('eventbus console in chromium, with a running pipeline', () => {
  let written = { good: 0, bad: 0 };

  it('shows written, published and consumed per second moving, the backlog per shard and the lag per group and partition as moving charts, and the relay and its shards', async () => {
    const page = await openPage(consoleServer.url);
    await page.getByTestId('written-rate').waitFor();
    // Nothing was written yet: the rates start at zero, and the per-shard chart has no line but its flat one.
    expect(await numberIn(page, 'written-rate')).toBe(0);
    expect(await numberIn(page, 'published-rate')).toBe(0);
    const shardChart = page.getByTestId('chart-shard-backlog');
    expect(await linesOf(shardChart)).toEqual(['no backlog']);
    const firstUpdate = await page.getByTestId('updated-at').textContent();

    const writing = startWriting();
    try {
      // No relay yet: the outbox grows in the two tenants' shards, each its own line.
      const backlogged = [...new Set([shardForTenant(goodTenant), shardForTenant(badTenant)])].sort((a, b) => a - b).map((n) => `shard ${n}`);
      await expect.poll(() => linesOf(shardChart), { timeout: 10_000 }).toEqual(backlogged);
      const shardPixels = await pixelsOf(shardChart);
      await expect.poll(() => pixelsOf(shardChart), { timeout: 5_000, message: 'the per-shard chart draws new points' }).not.toBe(shardPixels);
      await relay.start();
      await waitFor(async () => (await numberIn(page, 'written-rate')) > 0 && (await numberIn(page, 'published-rate')) > 0, {
        timeoutMs: 15_000,
        message: 'written/s and published/s above zero on the page',
      });
      // The lag charts: a line for the group, and in its panel a line per partition of the order topic.
      const groupChart = page.getByTestId('chart-group-lag');
      await expect.poll(() => linesOf(groupChart), { timeout: 15_000 }).toContain(billing);
      const partitionChart = page.locator(`[data-testid="group-lag"][data-group="${billing}"] [data-testid="chart-partition-lag"]`);
      await expect
        .poll(async () => (await linesOf(partitionChart)).filter((line) => line.startsWith(`${prefix}order [`)).length, { timeout: 15_000 })
        .toBeGreaterThan(0);
      const lagPixels = await pixelsOf(groupChart);
      await expect.poll(() => pixelsOf(groupChart), { timeout: 5_000, message: 'the per-group lag chart draws new points' }).not.toBe(lagPixels);
      await waitFor(async () => (await numberIn(page, 'consumed-rate')) > 0, { timeoutMs: 20_000, message: 'consumed/s above zero on the page' });
      expect(await page.getByTestId('updated-at').textContent()).not.toBe(firstUpdate);
      // The relay is listed; the lag table lists the group's partitions of the order topic.
      await expect.poll(() => page.getByTestId('relay-instances').textContent(), { timeout: 10_000 }).toContain('console-test-relay');
      // Its lanes together hold the 64 shards, each listed once.
      const held = [...(await page.getByTestId('relay-instances').textContent())!.matchAll(/ago(\d+) \(([\d, ]+)\)/g)];
      expect(held.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(64);
      expect(new Set(held.flatMap((m) => m[2]!.split(', ').map(Number))).size).toBe(64);
      const lagPanel = page.locator(`[data-testid="group-lag"][data-group="${billing}"]`);
      await expect.poll(() => lagPanel.textContent(), { timeout: 10_000 }).toContain(`${prefix}order`);
      await page.waitForTimeout(1500); // a few more points on the charts for the screenshot
      await page.screenshot({ path: `${SCREENSHOTS}console-pipeline.png`, fullPage: true });
    } finally {
      written = await writing.stop();
    }
    expect(written.bad).toBeGreaterThan(0);
  });

  it('filters dead letters, opens one, refuses a POST without the anti-CSRF token, retries one that then leaves the list and reaches its group, and discards one', async () => {
    await waitFor(async () => (await pool.query('SELECT count(*)::int AS n FROM eventbus.dead_letters')).rows[0].n === written.bad, {
      timeoutMs: 30_000,
      message: `${written.bad} dead letters mirrored`,
    });
    const page = await openPage(`${consoleServer.url}#dead-letters`);
    const rows = page.getByTestId('dead-letter-row');
    await page.getByTestId('filter-tenant').fill(goodTenant);
    await page.getByTestId('filter-apply').click();
    await expect.poll(() => page.getByTestId('dead-letter-count').textContent()).toBe('0 dead letters');
    await page.getByTestId('filter-tenant').fill(badTenant);
    await page.getByTestId('filter-group').fill(billing);
    await page.getByTestId('filter-stage').selectOption('consumer');
    await page.getByTestId('filter-type').fill('order.*');
    await page.getByTestId('filter-apply').click();
    await expect.poll(() => rows.count()).toBe(written.bad);
    await page.screenshot({ path: `${SCREENSHOTS}console-dead-letters.png` });

    // Open the newest one: payload, original position, the error and the mirror's position.
    const first = rows.first();
    const id = (await first.getAttribute('data-id'))!;
    await first.locator('td').nth(1).click();
    const detail = page.getByTestId('dead-letter-detail');
    await expect.poll(() => detail.textContent()).toContain('card processor declined: 503');
    expect(await page.getByTestId('original-position').textContent()).toMatch(new RegExp(`^${prefix.replace(/\./g, '\\.')}order partition \\d offset \\d+$`));
    expect(JSON.parse((await page.getByTestId('payload').textContent())!)).toMatchObject({ total: 10 });
    expect(await detail.textContent()).toContain(`${prefix}dlq.${billing}: partition`);
    await page.screenshot({ path: `${SCREENSHOTS}console-dead-letter.png` });

    // Another site's form cannot send the page's token: without it (or with a wrong one) the retry is refused.
    const post = (headers: Record<string, string>) =>
      fetch(`${consoleServer.url}api/dead-letters/retry`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({ ids: [id] }),
      });
    expect((await post({})).status).toBe(403);
    expect((await post({ 'x-csrf-token': 'forged' })).status).toBe(403);
    const { rows: still } = await pool.query('SELECT status, event_id FROM eventbus.dead_letters WHERE id = $1', [id]);
    expect(still[0].status).toBe('pending');

    // Retry it from the page, the handler now accepting this event.
    const eventId = still[0].event_id as string;
    forgiven.add(eventId);
    await first.getByTestId('select').check();
    await page.getByTestId('retry-selected').click();
    await expect.poll(() => page.getByTestId('confirm').textContent()).toContain('Retry 1 dead letter?');
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('action-message').textContent()).toContain('Re-driven: 1 of 1');
    await expect.poll(() => rows.count()).toBe(written.bad - 1);
    expect(await page.locator(`[data-testid="dead-letter-row"][data-id="${id}"]`).count()).toBe(0);
    await waitFor(() => handled.has(eventId), { timeoutMs: 30_000, message: 'the billing group handled the re-driven event' });
    expect((await pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [id])).rows[0].status).toBe('redriven');

    // Discard another from its detail view: it leaves the pending list and stays in the table as discarded.
    const other = rows.first();
    const otherId = (await other.getAttribute('data-id'))!;
    await other.locator('td').nth(1).click();
    await page.getByTestId('discard-one').click();
    await expect.poll(() => page.getByTestId('confirm').textContent()).toContain('Discard 1 dead letter?');
    await page.getByTestId('confirm-yes').click();
    await expect.poll(() => page.getByTestId('action-message').textContent()).toContain('Discarded: 1 of 1');
    await expect.poll(() => rows.count()).toBe(written.bad - 2);
    expect((await pool.query('SELECT status FROM eventbus.dead_letters WHERE id = $1', [otherId])).rows[0].status).toBe('discarded');

    // By time: a range that ended before the test holds none of them, one that ends tomorrow all.
    await page.getByTestId('filter-since').fill('2020-01-01T00:00');
    await page.getByTestId('filter-until').fill('2020-01-02T00:00');
    await page.getByTestId('filter-apply').click();
    await expect.poll(() => page.getByTestId('dead-letter-count').textContent()).toBe('0 dead letters');
    await page.getByTestId('filter-until').fill(new Date(Date.now() + 86_400_000).toISOString().slice(0, 16));
    await page.getByTestId('filter-apply').click();
    await expect.poll(() => rows.count()).toBe(written.bad - 2);
  });

  it('counts a replay in a dry run, starts it at a rate, follows it to the end, and stops a slow one', async () => {
    const page = await openPage(`${consoleServer.url}#replay`);
    await page.getByTestId('replay-tenant').fill(goodTenant);
    await page.getByTestId('replay-types').fill('order.*');
    await page.getByTestId('replay-group').fill(billing);
    await page.getByTestId('replay-rate').fill('2000');
    await page.getByTestId('replay-dry-run').click();
    await expect.poll(() => page.getByTestId('replay-count').textContent()).toBe(`${written.good} events match.`);
    const callsBefore = goodCalls;
    await page.getByTestId('replay-start').click();
    await expect
      .poll(() => page.getByTestId('confirm').textContent())
      .toContain(`Replay ${written.good} events of tenant ${goodTenant} to group ${billing}'s retry topic`);
    await page.getByTestId('confirm-yes').click();
    const job = page.getByTestId('replay-job').first();
    await expect.poll(() => job.getAttribute('data-state'), { timeout: 20_000 }).toBe('done');
    expect(await job.getByTestId('replay-progress').textContent()).toBe(`${written.good} / ${written.good}`);
    expect(await job.textContent()).toContain('2000/s');
    await page.screenshot({ path: `${SCREENSHOTS}console-replay.png`, fullPage: true });
    // The group handles every replayed event again.
    await waitFor(() => goodCalls >= callsBefore + written.good, { timeoutMs: 30_000, message: 'billing handled the replayed events' });

    // A slow replay stopped from the page: it ends after its chunk in flight and offers the resume token.
    await page.getByTestId('replay-rate').fill('5');
    await page.getByTestId('replay-start').click();
    await page.getByTestId('confirm-yes').click();
    const slow = page.getByTestId('replay-job').first();
    await expect.poll(() => slow.getAttribute('data-state')).toBe('running');
    await expect.poll(async () => Number((await slow.getByTestId('replay-progress').textContent())!.split(' / ')[0]), { timeout: 10_000 }).toBeGreaterThan(0);
    await slow.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(() => slow.getAttribute('data-state'), { timeout: 10_000 }).toBe('stopped');
    expect(await slow.textContent()).toMatch(/resume: eventbus replay … --resume \S+/);
  });
});

describe('eventbus console in chromium: dead letters without their value', () => {
  it('marks them [value not stored] in the list, and in the detail says where the original is and what was left out', async () => {
    const group = uniqueName('oversize-');
    const topic = `${prefix}order`;
    // As the DLQ mirror stores a record without the value, and a coordinates-only one (no key, no tenant).
    const insert = (offset: number, tenantId: string | null, headers: Record<string, string>) =>
      pool.query(
        `INSERT INTO eventbus.dead_letters (dedupe_key, stage, group_id, event_id, tenant_id, event_type, topic, partition, "offset",
           headers, error_class, error_message, attempts, first_failed_at, last_failed_at, header_names, header_values)
         VALUES ($1, 'consumer', $2, $3, $4, 'order.placed', $5, 1, $6, $7::jsonb, 'NonRetriableError', 'cannot bill', 1, now(), now(), '{}', '{}')
         RETURNING id::text`,
        [`consumer:${group}:${topic}:1:${offset}`, group, `e-${offset}`, tenantId, topic, offset, JSON.stringify(headers)],
      );
    const truncatedId = (await insert(41, 'acme', { 'eventbus-dlq-truncated': '1100000' })).rows[0].id as string;
    const keylessId = (
      await insert(42, null, { 'eventbus-dlq-truncated': '60500', 'eventbus-dlq-dropped': 'key=20000,ce_tenantid=20000,eventbus-dlq-error-stack=900' })
    ).rows[0].id as string;

    const page = await openPage(`${consoleServer.url}#dead-letters`);
    await page.getByTestId('filter-group').fill(group);
    await page.getByTestId('filter-apply').click();
    const rows = page.getByTestId('dead-letter-row');
    await expect.poll(() => rows.count()).toBe(2);
    for (const id of [truncatedId, keylessId]) {
      expect(await page.locator(`[data-testid="dead-letter-row"][data-id="${id}"] td`).last().textContent()).toBe(
        '[value not stored] NonRetriableError: cannot bill',
      );
    }

    await page.locator(`[data-testid="dead-letter-row"][data-id="${truncatedId}"] td`).nth(1).click();
    const detail = page.getByTestId('dead-letter-detail');
    await expect.poll(() => detail.textContent()).toContain(`Dead letter ${truncatedId}`);
    expect(await page.getByTestId('original-position').textContent()).toBe(`${topic} partition 1 offset 41`);
    expect(await page.getByTestId('payload-not-stored').textContent()).toContain(
      'Not stored: the DLQ copy (1,100,000 bytes) was larger than the DLQ topic accepts',
    );
    expect(await page.getByTestId('payload').count()).toBe(0);
    expect(await page.getByTestId('left-out').count()).toBe(0);
    expect(await detail.textContent()).toContain('(tenant acme)');

    await page.locator(`[data-testid="dead-letter-row"][data-id="${keylessId}"] td`).nth(1).click();
    await expect.poll(() => detail.textContent()).toContain(`Dead letter ${keylessId}`);
    expect(await page.getByTestId('original-position').textContent()).toBe(`${topic} partition 1 offset 42`);
    expect(await page.getByTestId('payload-not-stored').textContent()).toContain('(60,500 bytes)');
    expect(await detail.textContent()).toContain('(tenant not stored, 20,000 bytes)');
    expect(await page.getByTestId('left-out').textContent()).toBe(
      'Also left out of the DLQ record, too large for the DLQ topic: key (20,000 bytes), ce_tenantid (20,000 bytes), eventbus-dlq-error-stack (900 bytes). The original holds them.',
    );
  });
});

describe('eventbus console access control', () => {
  it('refuses to start on a non-loopback address without EVENTBUS_CONSOLE_TOKEN', async () => {
    const error = await startConsole({ pool, host: '0.0.0.0', port: 0 }).catch((e: unknown) => e);
    expect(isEventBusError(error, 'INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain('EVENTBUS_CONSOLE_TOKEN');
  });

  it('with a token, answers 401 to a request without it, and lets the login form and a bearer token in', async () => {
    const secretUrl = 'postgres://ops:s3cret-pw@db.internal:5432/app';
    const guarded = await startConsole({ pool, host: '0.0.0.0', port: 0, token: TOKEN, describeConnections: { database: secretUrl } });
    try {
      const local = guarded.url.replace('0.0.0.0', '127.0.0.1');
      expect((await fetch(`${local}api/pipeline`)).status).toBe(401);
      expect((await fetch(`${local}api/pipeline`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
      expect((await fetch(`${local}api/pipeline`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
      // Only the login page and its stylesheet load without the token: not the page's scripts.
      expect((await fetch(`${local}static/style.css`)).status).toBe(200);
      expect((await fetch(`${local}static/app.mjs`)).status).toBe(401);
      expect((await fetch(`${local}api/dead-letters/retry`, { method: 'POST', body: '{"ids":["1"]}' })).status).toBe(401);

      const page = await openPage(local);
      expect(new URL(page.url()).pathname).toBe('/login');
      await page.locator('input[name="token"]').fill(TOKEN);
      await page.locator('button[type="submit"]').click();
      await page.getByTestId('written-rate').waitFor({ timeout: 10_000 });
      const cookies = await page.context().cookies();
      expect(cookies.find((c) => c.name === 'eventbus_console_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
      // The page names the database, never its password.
      await expect.poll(() => page.locator('header').textContent()).toContain('postgres://ops:***@db.internal:5432/app');
      expect(await page.content()).not.toContain('s3cret-pw');
    } finally {
      await guarded.stop();
    }
  });

  it('answers only to a loopback Host header when bound to loopback (no DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${consoleServer.url}api/info`);
      const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host: 'attacker.example' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(421);
  });
});
