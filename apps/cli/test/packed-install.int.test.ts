import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { uniqueName, waitFor, withDatabase } from '@eventbus/dev-services';
import {
  compareVersions,
  EXAMPLE_DIR,
  REPO_ROOT,
  installExample,
  packPublishedPackages,
  peerVersionEnds,
  runCommand,
  SERVICE_PEERS,
  type PackedPackages,
  type PeerVersionEnds,
} from '@eventbus/dev-services/packed-install';
import { testServices } from '@eventbus/dev-services/test';
import { KAFKAJS_PATCH_REVISION } from '@eventbus/kafka';

// The packages as a user gets them: every publishable package packed once, then installed with
// npm into a temporary copy of examples/order-service (outside the workspace: npm, its own
// drizzle-orm, pg, kafkajs and @opentelemetry/api) with the lowest published versions of those
// four that every range the packages declare allows. The copy is typechecked and built with
// its own TypeScript, gets the eventbus schema from the installed `eventbus migrate` beside the
// service's own migrations, runs the installed `eventbus-relay` bin, the service's HTTP server
// and its billing worker, and must turn orders into invoices. The highest end of every range is
// what the workspace itself (and so the whole suite) runs on, and what the example pins: the
// first test checks that, so each end of every claimed range is one the producer, relay and
// consumer ran on, with one npm install instead of two.

type End = 'lowest';
const ENDS: End[] = ['lowest'];

let work: string;
let packed: PackedPackages;
let ends: PeerVersionEnds;
const installs = new Map<End, Promise<string>>();
const children: ChildProcess[] = [];

/** The version of a service peer the workspace's packages resolve (the one the whole suite runs on). */
function workspaceVersion(peer: string): string {
  const user = { 'drizzle-orm': 'packages/producer', pg: 'packages/relay', kafkajs: 'packages/kafka', '@opentelemetry/api': 'packages/core' }[peer]!;
  // pnpm links each package's dependencies into its own node_modules.
  return (JSON.parse(readFileSync(join(REPO_ROOT, user, 'node_modules', peer, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Starts a process of an installed service with only PATH and the given variables. */
function start(cwd: string, command: string, args: string[], env: Record<string, string>) {
  const child = spawn(command, args, { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return { child, output: () => output };
}

/** Adds the processes' output to a failure, so a failed run says what the service did. */
function withOutput(processes: Record<string, { output: () => string }>) {
  return (error: Error): never => {
    throw new Error([error.message, ...Object.entries(processes).map(([name, p]) => `--- ${name}\n${p.output()}`)].join('\n'));
  };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'eventbus-packed-'));
  packed = await packPublishedPackages(join(work, 'packs'));
  ends = await peerVersionEnds(packed);
  // Started here, awaited by the describe that uses it; the rejection handler only keeps a failed
  // install from being reported as unhandled before that describe awaits it (and fails on it).
  for (const end of ENDS) {
    const dir = join(work, end);
    const install = installExample(packed, dir, { versions: ends[end] }).then(() => dir);
    install.catch(() => undefined);
    installs.set(end, install);
  }
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.allSettled(installs.values());
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the ranges the packed packages declare for drizzle-orm, pg, kafkajs and @opentelemetry/api', () => {
  it("start at drizzle-orm 0.45.2 or later (SQL injection below it) and end at the example's pins, which the workspace runs on", async () => {
    expect(compareVersions(ends.lowest['drizzle-orm'], '0.45.2')).toBeGreaterThanOrEqual(0);
    const example = JSON.parse(await readFile(join(EXAMPLE_DIR, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const peer of SERVICE_PEERS) {
      const pin = example.dependencies[peer]!;
      const range = ends.ranges[peer].join(', ');
      expect(compareVersions(pin, ends.lowest[peer]), `${peer} ${pin} below ${range}`).toBeGreaterThanOrEqual(0);
      // A newer release inside the ranges fails here: bump the example's pin and the workspace's
      // to it, so the suite keeps running on the highest version the packages claim.
      expect(`${peer}@${pin}`, `the highest ${peer} in ${range} is ${ends.highest[peer]}`).toBe(`${peer}@${ends.highest[peer]}`);
      expect(`${peer}@${workspaceVersion(peer)}`, `the workspace's ${peer}`).toBe(`${peer}@${pin}`);
    }
  });
});

describe.each(ENDS)('the packed packages installed with npm into examples/order-service, with the %s versions in range', (end) => {
  let app: string;
  beforeAll(async () => {
    app = await installs.get(end)!;
  }, 240_000);

  it("carry real versions, one copy of each peer (the service's own, at the version asked for), and the files they need at run time", async () => {
    const producer = JSON.parse(await readFile(join(app, 'node_modules/@eventbus/producer/package.json'), 'utf8'));
    expect(producer.dependencies['@eventbus/schema']).toBe('0.1.0');
    expect(producer.peerDependencies['drizzle-orm']).toBeDefined();
    expect(producer.exports['.'].source).toBeUndefined();
    // Installed once, at the top: the service's transaction is the type and the class the
    // packages use, and the one kafkajs is the one the postinstall patched.
    const listed = await runCommand('npm', ['ls', '--all', '--parseable', ...SERVICE_PEERS], { cwd: app });
    const copies = listed
      .trim()
      .split('\n')
      .filter((line) => /node_modules[/\\](drizzle-orm|pg|kafkajs|@opentelemetry[/\\]api)$/.test(line));
    expect(copies.sort()).toEqual(SERVICE_PEERS.map((peer) => join(app, 'node_modules', peer)).sort());
    for (const peer of SERVICE_PEERS) {
      const installed = JSON.parse(await readFile(join(app, 'node_modules', peer, 'package.json'), 'utf8')) as { version: string };
      expect(`${peer}@${installed.version}`).toBe(`${peer}@${ends[end][peer]}`);
    }
    await readFile(join(app, 'node_modules/@eventbus/schema/drizzle/meta/_journal.json'), 'utf8');
    await readFile(join(app, 'node_modules/@eventbus/kafka/patches/kafkajs@2.2.4.patch'), 'utf8');
    expect((await readFile(join(app, 'node_modules/@eventbus/relay-app/dist/main.js'), 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it("get the kafkajs patch applied by the example's postinstall (patch-package with the patch @eventbus/kafka ships)", async () => {
    const script = "import('@eventbus/kafka').then((m) => console.log(JSON.stringify(m.kafkajsPatchRevision() ?? null)))";
    const revision = JSON.parse(await runCommand(process.execPath, ['-e', script], { cwd: app }));
    expect(revision).toBe(KAFKAJS_PATCH_REVISION);
  });

  it('serve the console page and its assets from the installed @eventbus/console (eventbus console)', async () => {
    // Postgres only (the page and its files need no tables; without KAFKA_BROKERS the console runs without lag).
    const consoleProcess = start(app, join(app, 'node_modules/.bin/eventbus'), ['console', '--port', '0', '--json'], {
      DATABASE_URL: testServices().databaseUrl,
    });
    let url = '';
    await waitFor(
      () => {
        // --json prints {"url": …} (indented) once it listens.
        url = /"url":\s*"([^"]+)"/.exec(consoleProcess.output())?.[1] ?? '';
        return url !== '';
      },
      { timeoutMs: 20_000, message: 'eventbus console to listen' },
    ).catch(withOutput({ console: consoleProcess }));
    try {
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<script type="module" src="/static/app.mjs"');
      // Its own files (public/, in the package's `files`) and the libraries' browser builds (its dependencies).
      for (const asset of [
        '/static/app.mjs',
        '/static/charts.mjs',
        '/static/chart-series.mjs',
        '/static/style.css',
        '/vendor/preact.mjs',
        '/vendor/uPlot.esm.js',
      ]) {
        const response = await fetch(new URL(asset, url));
        expect(`${asset} ${response.status}`).toBe(`${asset} 200`);
        expect((await response.text()).length, asset).toBeGreaterThan(100);
      }
    } finally {
      consoleProcess.child.kill('SIGTERM');
    }
  });

  it("typecheck with the service's own TypeScript and drizzle-orm, and carry an order to an invoice through the installed relay", async () => {
    await runCommand(join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: app });

    const { databaseUrl, kafkaBrokers } = testServices();
    const name = uniqueName(`eb_packed_${end}_`)
      .replace(/[^a-z0-9_]/gi, '_')
      .toLowerCase();
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    const url = withDatabase(databaseUrl, name);
    const db = new pg.Client({ connectionString: url });
    try {
      const env = { DATABASE_URL: url, KAFKA_BROKERS: kafkaBrokers.join(','), EVENTBUS_TOPIC_PREFIX: `${uniqueName('packed-')}.` };
      // The eventbus schema by the installed CLI, then the service's own drizzle-kit migrations.
      await runCommand(join(app, 'node_modules/.bin/eventbus'), ['migrate'], { cwd: app, env: { PATH: process.env.PATH, ...env } });
      await runCommand(process.execPath, ['dist/migrate.js'], { cwd: app, env: { PATH: process.env.PATH, ...env } });
      await db.connect();
      const tables = await db.query(
        `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema IN ('public', 'eventbus') ORDER BY 1`,
      );
      expect(tables.rows.map((r) => r.t)).toEqual(expect.arrayContaining(['eventbus.event_log', 'eventbus.outbox', 'public.invoices', 'public.orders']));

      // The relay from its installed bin (its shebang, not `node main.js`); RELAY_MIGRATE=false: the CLI did it.
      const relay = start(app, join(app, 'node_modules/.bin/eventbus-relay'), [], {
        ...env,
        RELAY_MIGRATE: 'false',
        HTTP_PORT: '0',
        RELAY_POLL_INTERVAL_MS: '200',
      });
      const worker = start(app, process.execPath, ['dist/worker.js'], { ...env, BILLING_GROUP_ID: uniqueName('billing-') });
      const server = start(app, process.execPath, ['dist/server.js'], { ...env, PORT: '0' });
      let port = 0;
      await waitFor(
        () => {
          const match = /\{"listening":(\d+)\}/.exec(server.output());
          if (match) port = Number(match[1]);
          return port > 0;
        },
        { timeoutMs: 20_000, message: 'the order service to listen' },
      ).catch(withOutput({ server }));

      const ids: string[] = [];
      for (const [tenantId, totalCents] of [
        ['acme', 1299],
        ['globex', 500],
        ['acme', 42],
      ] as const) {
        const response = await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', body: JSON.stringify({ tenantId, totalCents }) });
        expect(response.status).toBe(201);
        ids.push(((await response.json()) as { id: string }).id);
      }
      // A bad request writes nothing.
      expect((await fetch(`http://127.0.0.1:${port}/orders`, { method: 'POST', body: '{"tenantId": 7}' })).status).toBe(400);

      await waitFor(async () => (await db.query('SELECT count(*)::int AS n FROM invoices')).rows[0].n >= ids.length, {
        timeoutMs: 45_000,
        message: 'an invoice per order',
      }).catch(withOutput({ relay, worker, server }));
      const invoices = await db.query('SELECT order_id, tenant_id, total_cents FROM invoices ORDER BY total_cents');
      expect(invoices.rows).toEqual([
        { order_id: ids[2], tenant_id: 'acme', total_cents: 42 },
        { order_id: ids[1], tenant_id: 'globex', total_cents: 500 },
        { order_id: ids[0], tenant_id: 'acme', total_cents: 1299 },
      ]);
      expect((await db.query('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBe(3);
      expect((await db.query('SELECT count(*)::int AS n FROM eventbus.outbox')).rows[0].n).toBe(0);
      // The example's postinstall applied the kafkajs patch @eventbus/kafka ships, with patch-package.
      expect(relay.output()).toContain(`"kafkajsPatch":${KAFKAJS_PATCH_REVISION}`);
      for (const p of [server, worker, relay]) p.child.kill('SIGTERM');
    } finally {
      await db.end().catch(() => undefined);
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
      await admin.end();
    }
  }, 90_000);
});
