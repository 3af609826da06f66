import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';
import { RELAY_MAIN } from './relay-process-fixture.js';

// drizzle-orm is the costliest module the relay could load (as ES modules on Node 24, ~1.2 s
// of CPU and a ~190 MB RSS peak at start), and the relay needs it only to apply migrations:
// its own SQL is plain. These runs record what the app resolves (test/fixtures/record-drizzle-loads.mjs).

const RECORDER = fileURLToPath(new URL('./fixtures/record-drizzle-loads.mjs', import.meta.url));
const APP_DIR = fileURLToPath(new URL('..', import.meta.url));

let database: TestDatabase;
const children: ChildProcess[] = [];

beforeAll(async () => {
  database = await testDatabase('relay_modules');
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await database?.drop();
});

interface Run {
  code: number | null;
  output: string;
  /** The drizzle-orm specifiers the process resolved, in order. */
  drizzle: string[];
}

/** Runs node with the recorder preloaded; `until` (a log fragment) makes the test stop it with SIGTERM once seen. */
async function run(args: string[], env: Record<string, string>, until?: string): Promise<Run> {
  const child = spawn(process.execPath, ['--import', RECORDER, ...args], {
    cwd: APP_DIR,
    env: { PATH: process.env.PATH ?? '', HTTP_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  if (until) {
    await waitFor(() => output.includes(until) || child.exitCode !== null, { timeoutMs: 30_000, message: `'${until}' in the output` });
    if (!output.includes(until)) throw new Error(`exited before '${until}':\n${output}`);
    child.kill('SIGTERM');
  }
  const code = await exited;
  const line = /drizzle-orm loads: (.*)/.exec(output);
  if (!line) throw new Error(`the recorder wrote nothing:\n${output}`);
  return { code, output, drizzle: JSON.parse(line[1]!) as string[] };
}

describe('which modules the relay app loads', () => {
  it('the recorder sees drizzle-orm where it is loaded: @eventbus/schema with its tables', async () => {
    const r = await run(['--input-type=module', '-e', "await import('@eventbus/schema')"], {});
    expect(r.code).toBe(0);
    expect(r.drizzle).toContain('drizzle-orm/pg-core');
  });

  it('the app with every static import evaluated loads no drizzle-orm (a config error ends it there)', async () => {
    const r = await run([RELAY_MAIN], {});
    expect(r.code, r.output).toBe(2);
    expect(r.output).toContain('DATABASE_URL');
    expect(r.drizzle).toEqual([]);
  });

  it('a running relay with RELAY_MIGRATE=false loads no drizzle-orm; with migrations on, only the migrator loads it', async () => {
    const env = { DATABASE_URL: database.url, KAFKA_BROKERS: testServices().kafkaBrokers.join(',') };
    const migrating = await run([RELAY_MAIN], { ...env, RELAY_MIGRATE: 'true' }, 'relay ready');
    expect(migrating.output).toContain('migrations: ');
    expect(migrating.drizzle).toContain('drizzle-orm/node-postgres/migrator');
    expect(migrating.drizzle).not.toContain('drizzle-orm/pg-core');

    const plain = await run([RELAY_MAIN], { ...env, RELAY_MIGRATE: 'false' }, 'relay ready');
    expect(plain.code, plain.output).toBe(0);
    expect(plain.drizzle).toEqual([]);
  });
});
