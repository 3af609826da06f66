import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Readable, Writable } from 'node:stream';
import pg from 'pg';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { KafkaCollector, uniqueName, waitFor, type TestDatabase } from '@eventbus/dev-services';
import { testDatabase, testServices } from '@eventbus/dev-services/test';

/** The built CLI: the tests run it as an operator would, as a process. */
export const CLI_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const CLI_ENTRY = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json<T = any>(): T;
}

export interface RunningCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  done: Promise<CliRun>;
}

/** Starts `eventbus …` with only the given environment (plus PATH). */
export function startCli(args: string[], env: Record<string, string>, nodeArgs: string[] = []): RunningCli {
  const child = spawn(process.execPath, [...nodeArgs, CLI_MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<CliRun>((resolve) =>
    child.on('close', (code) =>
      resolve({
        code,
        stdout,
        stderr,
        json() {
          try {
            return JSON.parse(stdout);
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
          }
        },
      }),
    ),
  );
  return { child, stdout: () => stdout, stderr: () => stderr, done };
}

/** Runs `eventbus …` to the end, with a deadline. */
export async function runCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliRun> {
  const running = startCli(args, env);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
  try {
    return await running.done;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs a command line through the built CLI's entry function (dist/cli.js) in this process,
 * with captured stdout and stderr and no terminal: the same code as the binary minus the
 * process start, for long matrices of cheap cases.
 */
export async function runCliInProcess(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const { runCli: run } = (await import(pathToFileURL(CLI_ENTRY).href)) as { runCli: (argv: string[], io: unknown) => Promise<number> };
  let stdout = '';
  let stderr = '';
  const sink = (append: (text: string) => void) =>
    new Writable({
      write: (chunk, _enc, done) => {
        append(String(chunk));
        done();
      },
    });
  const code = await run(args, {
    stdout: sink((t) => (stdout += t)),
    stderr: sink((t) => (stderr += t)),
    stdin: Readable.from([]),
    env,
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

/** A migrated database, Kafka admin and collectors for one test file. */
export async function cliFixture(label: string) {
  const database: TestDatabase = await testDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 6 });
  pool.on('error', () => undefined);
  const { kafkaBrokers } = testServices();
  const admin: Admin = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const running: Array<{ stop(): Promise<void> }> = [];
  return {
    database,
    pool,
    brokers: kafkaBrokers,
    prefix: () => `${uniqueName(`${label}.`)}.`,
    /** The environment an operator would have: the relay's variables. */
    env: (prefix: string): Record<string, string> => ({ DATABASE_URL: database.url, KAFKA_BROKERS: kafkaBrokers.join(','), EVENTBUS_TOPIC_PREFIX: prefix }),
    async collect(topics: Array<string | RegExp>) {
      const collector = await new KafkaCollector(kafkaBrokers, topics).start();
      running.push(collector);
      return collector;
    },
    /** Messages ever written to a topic (0 when it does not exist). */
    async messageCount(topic: string): Promise<number> {
      if (!(await admin.listTopics()).includes(topic)) return 0;
      // A topic the CLI created a moment ago may not have its leader yet ("not the leader"): asked again, Kafka answers.
      const offsets = await waitFor(() => admin.fetchTopicOffsets(topic).catch(() => undefined), { timeoutMs: 10_000, message: `the offsets of ${topic}` });
      return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
    },
    track<T extends { stop(): Promise<void> }>(thing: T): T {
      running.push(thing);
      return thing;
    },
    async rowCounts(): Promise<Record<string, number>> {
      const { rows } =
        await pool.query(`SELECT (SELECT count(*) FROM eventbus.event_log)::int AS event_log, (SELECT count(*) FROM eventbus.outbox)::int AS outbox,
        (SELECT count(*) FROM eventbus.dead_letters)::int AS dead_letters, (SELECT count(*) FROM eventbus.inbox)::int AS inbox`);
      return rows[0];
    },
    async close() {
      await Promise.all(running.splice(0).map((r) => r.stop()));
      await admin.disconnect();
      await pool.end();
      await database.drop();
    },
  };
}

/**
 * Seeds EventLog rows with one INSERT … SELECT: `count` events of `tenantId`, one a minute
 * from `start`, alternating the given types. Returns nothing: tests read back what they need.
 */
export async function seedEvents(
  pool: pg.Pool,
  options: { tenantId: string; count: number; start: string; types: string[]; keyPrefix?: string },
): Promise<void> {
  await pool.query(
    `INSERT INTO eventbus.event_log (id, tenant_id, event_key, event_type, payload, correlation_id, created_at)
     SELECT gen_random_uuid(), $1, $2 || i, ($3::text[])[1 + (i % array_length($3::text[], 1))], jsonb_build_object('seq', i),
            'corr-' || (i % 5), $4::timestamptz + i * interval '1 minute'
     FROM generate_series(0, $5 - 1) AS i`,
    [options.tenantId, options.keyPrefix ?? `${options.tenantId}-`, options.types, options.start, options.count],
  );
}

/** The tenant's event ids matching a SQL predicate, in replay order. */
export async function eventIds(pool: pg.Pool, tenantId: string, where = 'true', params: unknown[] = []): Promise<string[]> {
  const { rows } = await pool.query(`SELECT id::text FROM eventbus.event_log WHERE tenant_id = $1 AND ${where} ORDER BY created_at, id`, [tenantId, ...params]);
  return rows.map((r) => r.id);
}

// dev-services' createTopics waits out a just-created topic the broker does not host yet.
export { createTopics } from '@eventbus/dev-services';
