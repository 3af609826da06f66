import { afterAll, describe, expect, it } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createTestDatabase, startAppProcess, uniqueName, waitFor } from '@eventbus/dev-services';
import { testServices } from '@eventbus/dev-services/test';

const run = promisify(execFile);
const DEMO = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const RELAY = fileURLToPath(new URL('../../relay/dist/main.js', import.meta.url));
const MIRROR = fileURLToPath(new URL('../../dlq-mirror/dist/main.js', import.meta.url));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts an app the way docker-compose does, with the same kind of environment; resolves once it logs that it is ready. */
async function startApp(main: string, env: Record<string, string>, ready: RegExp) {
  const app = startAppProcess(main, env, children);
  await waitFor(() => ready.test(app.output()) || app.child.exitCode !== null, { timeoutMs: 30_000, message: `${main} ready` });
  if (app.child.exitCode !== null) throw new Error(`${main} exited: ${app.output().slice(-1000)}`);
  return app;
}

describe('pnpm demo --external (the docker-compose layout: relay and DLQ mirror as their own processes)', () => {
  it('the demo only writes and consumes; the relay app publishes and the mirror app fills the DLQ table', async () => {
    const { databaseUrl, kafkaBrokers } = testServices();
    const database = await createTestDatabase(databaseUrl, 'demoext');
    try {
      const run_ = uniqueName('x');
      const shared = { DATABASE_URL: database.url, KAFKA_BROKERS: kafkaBrokers.join(','), EVENTBUS_TOPIC_PREFIX: `demo-${run_}.` };
      const groups = { DEMO_GROUP_PREFIX: `${run_}-` };
      const relay = await startApp(RELAY, shared, /relay ready/);
      const mirror = await startApp(MIRROR, { ...shared, DLQ_MIRROR_GROUPS: `${run_}-billing,${run_}-shipping` }, /ready/);
      const { stdout, stderr } = await run(process.execPath, [DEMO, '--external', '--duration', '2', '--rate', '100', '--json'], {
        env: { ...process.env, ...shared, ...groups },
        timeout: 60_000,
      });
      const summary = JSON.parse(stdout.trim());
      expect(summary.written).toBeGreaterThan(20); // the rate is a target; a loaded machine writes fewer
      expect(summary.consumedByBilling).toBe(summary.written);
      expect(summary.invoices).toBe(summary.written);
      expect(summary.shippedOk + summary.deadLettered).toBe(summary.written);
      expect(summary.deadLettered).toBeGreaterThan(0);
      // Only the mirror app can have written these rows: the demo started no mirror.
      expect(summary.mirroredToTable).toBe(summary.deadLettered);
      expect(stderr).toMatch(/summary: \d+ orders written/);
      relay.child.kill('SIGTERM');
      mirror.child.kill('SIGTERM');
      expect(await relay.exited).toBe(0);
      expect(await mirror.exited).toBe(0);
    } finally {
      await database.drop();
    }
  });
});
