import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { uniqueName, waitFor, withDatabase } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';
import { KAFKAJS_PATCH_REVISION } from '@eventbus/kafka';

// The packages as a user gets them: `pnpm pack` every publishable package (workspace:*
// rewritten to 0.1.0), `npm install` the tarballs into a temporary copy of
// examples/order-service (outside the workspace: npm, its own drizzle-orm and pg), typecheck
// and build it with its own TypeScript, apply the eventbus schema with the installed `eventbus
// migrate` beside the service's own migrations, run the installed `eventbus-relay` bin, the
// service's HTTP server and its billing worker, and see an order become an invoice.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples/order-service');
/** Every package a user installs; dev-services and the demo stay private. */
const PUBLISHED = [
  'packages/core', 'packages/kafka', 'packages/producer', 'packages/consumer', 'packages/relay', 'packages/replay',
  'packages/schema', 'packages/monitor', 'packages/telemetry', 'packages/app-runtime', 'packages/dead-letters',
  'apps/relay', 'apps/dlq-mirror', 'apps/cli',
];

let work: string;
let app: string;
const children: ChildProcess[] = [];

/** Runs a command, failing with its output (npm and tsc explain themselves on stdout/stderr). */
async function sh(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** Starts a process of the installed service with only PATH and the given variables. */
function start(command: string, args: string[], env: Record<string, string>) {
  const child = spawn(command, args, { cwd: app, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  const packs = join(work, 'packs');
  app = join(work, 'order-service');
  // Four packs at a time: each is a short pnpm process; 2 cores are shared.
  const queue = [...PUBLISHED];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let dir = queue.shift(); dir; dir = queue.shift()) await sh('pnpm', ['pack', '--pack-destination', packs], { cwd: join(ROOT, dir) });
  }));
  const tarballs = new Map<string, string>();
  for (const file of await readdir(packs)) {
    const manifest = JSON.parse(await sh('tar', ['xzf', join(packs, file), '-O', 'package/package.json'], { cwd: packs })) as { name: string };
    tarballs.set(manifest.name, `file:${join(packs, file)}`);
  }
  expect(tarballs.size).toBe(PUBLISHED.length);

  await cp(EXAMPLE, app, { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) });
  // The example names the packages by version, as from a registry; here every @eventbus package,
  // direct or transitive, comes from its tarball.
  const pkg = JSON.parse(await readFile(join(app, 'package.json'), 'utf8'));
  for (const name of Object.keys(pkg.dependencies)) if (name.startsWith('@eventbus/')) pkg.dependencies[name] = tarballs.get(name);
  pkg.overrides = Object.fromEntries(tarballs);
  await writeFile(join(app, 'package.json'), JSON.stringify(pkg, null, 2));
  // The shared npm cache (~/.npm) makes a repeated install fast; third-party packages come from the registry.
  await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app });
}, 240_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the packed packages installed with npm into examples/order-service', () => {
  it('carry real versions, one drizzle-orm and one pg (the service\'s own), and the files they need at run time', async () => {
    const producer = JSON.parse(await readFile(join(app, 'node_modules/@eventbus/producer/package.json'), 'utf8'));
    expect(producer.dependencies['@eventbus/schema']).toBe('0.1.0');
    expect(producer.peerDependencies['drizzle-orm']).toBeDefined();
    expect(producer.exports['.'].source).toBeUndefined();
    // Installed once, at the top: the service's transaction is the type and the class the packages use.
    const { stdout } = await run('npm', ['ls', '--all', '--parseable', 'drizzle-orm', 'pg'], { cwd: app });
    const copies = stdout.trim().split('\n').filter((line) => /node_modules[/\\](drizzle-orm|pg)$/.test(line));
    expect(copies.sort()).toEqual([join(app, 'node_modules/drizzle-orm'), join(app, 'node_modules/pg')]);
    await readFile(join(app, 'node_modules/@eventbus/schema/drizzle/meta/_journal.json'), 'utf8');
    await readFile(join(app, 'node_modules/@eventbus/kafka/patches/kafkajs@2.2.4.patch'), 'utf8');
    expect((await readFile(join(app, 'node_modules/@eventbus/relay-app/dist/main.js'), 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('get the kafkajs patch applied by the example\'s postinstall (patch-package with the patch @eventbus/kafka ships)', async () => {
    const script = "import('@eventbus/kafka').then((m) => console.log(JSON.stringify(m.kafkajsPatchRevision() ?? null)))";
    const revision = JSON.parse(await sh(process.execPath, ['-e', script], { cwd: app }));
    expect(revision).toBe(KAFKAJS_PATCH_REVISION);
  });

  it('typecheck with the service\'s own TypeScript and drizzle-orm, and carry an order to an invoice through the installed relay', async () => {
    await sh(join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: app });

    const { databaseUrl, kafkaBrokers } = testServices();
    const name = uniqueName('eb_packed_').replace(/[^a-z0-9_]/gi, '_').toLowerCase();
    const admin = new pg.Client({ connectionString: databaseUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${name}"`);
    const url = withDatabase(databaseUrl, name);
    const db = new pg.Client({ connectionString: url });
    try {
      const env = { DATABASE_URL: url, KAFKA_BROKERS: kafkaBrokers.join(','), EVENTBUS_TOPIC_PREFIX: `${uniqueName('packed-')}.` };
      // The eventbus schema by the installed CLI, then the service's own drizzle-kit migrations.
      await sh(join(app, 'node_modules/.bin/eventbus'), ['migrate'], { cwd: app, env: { PATH: process.env.PATH, ...env } });
      await sh(process.execPath, ['dist/migrate.js'], { cwd: app, env: { PATH: process.env.PATH, ...env } });
      await db.connect();
      const tables = await db.query(`SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema IN ('public', 'eventbus') ORDER BY 1`);
      expect(tables.rows.map((r) => r.t)).toEqual(expect.arrayContaining(['eventbus.event_log', 'eventbus.outbox', 'public.invoices', 'public.orders']));

      // The relay from its installed bin (its shebang, not `node main.js`); RELAY_MIGRATE=false: the CLI did it.
      const relay = start(join(app, 'node_modules/.bin/eventbus-relay'), [], { ...env, RELAY_MIGRATE: 'false', HTTP_PORT: '0', RELAY_POLL_INTERVAL_MS: '200' });
      const worker = start(process.execPath, ['dist/worker.js'], { ...env, BILLING_GROUP_ID: uniqueName('billing-') });
      const server = start(process.execPath, ['dist/server.js'], { ...env, PORT: '0' });
      let port = 0;
      await waitFor(() => {
        const match = /\{"listening":(\d+)\}/.exec(server.output());
        if (match) port = Number(match[1]);
        return port > 0;
      }, { timeoutMs: 20_000, message: 'the order service to listen' }).catch(withOutput({ server }));

      const ids: string[] = [];
      for (const [tenantId, totalCents] of [['acme', 1299], ['globex', 500], ['acme', 42]] as const) {
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
