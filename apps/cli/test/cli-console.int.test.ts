import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { runCli, startCli } from './cli-fixture.js';

// `eventbus console` as an operator starts it: the process, its flags and environment, its
// refusal to listen off loopback without a token, and its stop on SIGTERM. What the page
// shows and does is tested in chromium in packages/console/test/console-browser.int.test.ts.

let database: TestDatabase;
const TOKEN = 'cli-console-token-0123456789';
const PASSWORD = 's3cret-pw';

beforeAll(async () => {
  database = await testDatabase('cliconsole');
});
afterAll(async () => database?.drop());

/** The test database's URL with a password in it (local trust auth ignores it): the console must never show it. */
const databaseUrl = () => database.url.replace('://postgres@', `://postgres:${PASSWORD}@`);

describe('eventbus console', () => {
  it('refuses to start on a non-loopback address without EVENTBUS_CONSOLE_TOKEN (exit 2), before connecting to anything', async () => {
    const run = await runCli(['console', '--host', '0.0.0.0', '--port', '0'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain('EVENTBUS_CONSOLE_TOKEN');
    const short = await runCli(['console', '--host', '0.0.0.0'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', EVENTBUS_CONSOLE_TOKEN: 'short' });
    expect(short.code, short.stderr).toBe(2);
    expect(short.stderr).toContain('at least 16 characters');
  });

  it('serves on loopback, prints its URL, shows the database without its password, and stops on SIGTERM with exit 0', async () => {
    if (!database.url.includes('://postgres@')) throw new Error(`expected a password-less test database URL, got ${database.url}`);
    const env = { DATABASE_URL: databaseUrl(), KAFKA_BROKERS: testServices().kafkaBrokers.join(',') };
    const cli = startCli(['console', '--port', '0', '--json'], env);
    await waitFor(() => cli.stdout().includes('"url"'), { timeoutMs: 20_000, message: `the console's URL on stdout (stderr: ${cli.stderr()})` });
    const { url } = JSON.parse(cli.stdout()) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const info = await (await fetch(`${url}api/info`)).json();
    expect(info).toMatchObject({ database: expect.stringContaining('postgres:***@'), kafka: true });
    expect(JSON.stringify(info)).not.toContain(PASSWORD);
    const page = await (await fetch(url)).text();
    expect(page).toMatch(/<meta name="csrf-token" content="[\w-]{40,}">/);
    cli.child.kill('SIGTERM');
    const done = await cli.done;
    expect(done.code, done.stderr).toBe(0);
  });

  it('says which port is taken (exit 2) when another process listens on it', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as import('node:net').AddressInfo;
    try {
      const run = await runCli(['console', '--port', String(port)], { DATABASE_URL: databaseUrl() });
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE): choose another --port or --host`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('with EVENTBUS_CONSOLE_TOKEN on a non-loopback address, answers 401 without the token and 200 with it', async () => {
    const cli = startCli(['console', '--host', '0.0.0.0', '--port', '0', '--json'], { DATABASE_URL: databaseUrl(), EVENTBUS_CONSOLE_TOKEN: TOKEN });
    try {
      await waitFor(() => cli.stdout().includes('"url"'), { timeoutMs: 20_000, message: `the console's URL on stdout (stderr: ${cli.stderr()})` });
      const url = (JSON.parse(cli.stdout()) as { url: string }).url.replace('0.0.0.0', '127.0.0.1');
      expect((await fetch(`${url}api/pipeline`)).status).toBe(401);
      const ok = await fetch(`${url}api/pipeline`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
      // No brokers configured: the lag panel says so instead of failing.
      expect((await ok.json()).lagError).toContain('Kafka is not configured');
    } finally {
      cli.child.kill('SIGTERM');
      await cli.done;
    }
  });
});
