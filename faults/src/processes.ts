import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@eventbus/dev-services';

/** The deployable relay, as operators run it. */
export const RELAY_MAIN = fileURLToPath(new URL('../../apps/relay/dist/main.js', import.meta.url));
/** The consumer process of the matrix, always from dist/ (also when this module runs from src/ under vitest). */
export const WORKER_MAIN = fileURLToPath(new URL('../dist/consumer-worker.js', import.meta.url));

/**
 * Every child still running, killed when this process exits. A test runner that gives up on a
 * scenario (its timeout) and ends its worker leaves the scenario's relays and consumers running,
 * reparented to init, still consuming CPU and joining groups; kill() is synchronous, so it works
 * inside 'exit'.
 */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Registers a child to be killed if this process exits first. */
function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/**
 * A child process the matrix started, with the tail of its output (for the report when
 * something goes wrong) and a promise of its exit.
 */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string | null>;
  private tail = '';
  /** Set when the matrix itself stopped or killed it; any other exit is unexpected. */
  stopRequested = false;
  /** How the process ended, once it has. */
  exit: number | string | null | undefined;

  constructor(
    readonly name: string,
    script: string,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [script], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(this.child);
    // FAULTS_PROCESS_LOGS=<dir> keeps each process' whole output in <dir>/<name>.log, to see
    // afterwards what a relay or worker did during a fault (the report keeps only a tail).
    const logDir = process.env.FAULTS_PROCESS_LOGS;
    const logFile = logDir ? createWriteStream(join(logDir, `${name}.log`), { flags: 'a' }) : undefined;
    const keep = (d: Buffer) => {
      this.tail = (this.tail + d.toString()).slice(-20_000);
      logFile?.write(d);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.on('close', () => logFile?.end());
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        this.exit = code ?? signal;
        resolve(this.exit);
      }),
    );
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  output(): string {
    return this.tail;
  }

  /** SIGKILL: no cleanup, connections dropped by the kernel, the crash the guarantees must survive. */
  async kill(): Promise<void> {
    this.stopRequested = true;
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    this.stopRequested = true;
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Settings of one relay process (the environment of apps/relay, see apps/relay/src/config.ts). */
export interface RelayProcessSettings {
  databaseUrl: string;
  brokers: string[];
  topicPrefix: string;
  batchSize: number;
  lanes: number;
}

/**
 * Starts `node apps/relay/dist/main.js` and waits until /readyz answers 200. The wait is long:
 * in the full suite, with the other test files' processes on the same 2 cores, relays took up
 * to 29 s to get ready; an idle machine takes about 2 s.
 */
export async function startRelay(name: string, s: RelayProcessSettings, timeoutMs = 60_000): Promise<ManagedProcess> {
  const relay = new ManagedProcess(name, RELAY_MAIN, {
    DATABASE_URL: s.databaseUrl,
    KAFKA_BROKERS: s.brokers.join(','),
    EVENTBUS_TOPIC_PREFIX: s.topicPrefix,
    KAFKA_CLIENT_ID: `faults-${name}`,
    RELAY_BATCH_SIZE: String(s.batchSize),
    RELAY_LANES: String(s.lanes),
    RELAY_POLL_INTERVAL_MS: '500',
    RELAY_REBALANCE_INTERVAL_MS: '500',
    RELAY_INSTANCE_ID: name,
    // The checker migrated the database; several relays booting at once need not.
    RELAY_MIGRATE: 'false',
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    SHUTDOWN_GRACE_MS: '5000',
    LOG_LEVEL: 'info',
  });
  try {
    const port = await waitFor(
      () => {
        if (!relay.running) throw new Error(`relay ${name} exited (${relay.exit}): ${relay.output().slice(-2000)}`);
        return /"port":(\d+)/.exec(relay.output())?.[1];
      },
      { timeoutMs, message: `relay ${name} listening` },
    );
    await waitFor(
      async () => {
        if (!relay.running) throw new Error(`relay ${name} exited (${relay.exit})`);
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200;
      },
      { timeoutMs, intervalMs: 100, message: `relay ${name} /readyz` },
    );
  } catch (error) {
    await relay.kill();
    throw error;
  }
  return relay;
}

/** Settings of one consumer worker process. */
export interface WorkerProcessSettings {
  databaseUrl: string;
  brokers: string[];
  topicPrefix: string;
  groupId: string;
  handlerDelayMs: number;
  /** `control`: a second group that treats poison events as ordinary ones (scenario 7's comparison). */
  role?: 'main' | 'control';
}

/** Starts a consumer worker and waits until it has joined its group. */
export async function startWorker(name: string, s: WorkerProcessSettings, timeoutMs = 60_000): Promise<ManagedProcess> {
  const worker = new ManagedProcess(name, WORKER_MAIN, {
    DATABASE_URL: s.databaseUrl,
    KAFKA_BROKERS: s.brokers.join(','),
    TOPIC_PREFIX: s.topicPrefix,
    GROUP_ID: s.groupId,
    WORKER_ID: name,
    HANDLER_DELAY_MS: String(s.handlerDelayMs),
    RECORD_AS: s.role ?? 'main',
    POISON_MODE: s.role === 'control' ? 'ignore' : 'fail',
    // FAULTS_KAFKAJS_LOG_LEVEL=4 (info) shows the group's joins, rebalances and connection errors in the worker's output.
    ...(process.env.FAULTS_KAFKAJS_LOG_LEVEL ? { KAFKAJS_LOG_LEVEL: process.env.FAULTS_KAFKAJS_LOG_LEVEL } : {}),
  });
  try {
    await waitFor(
      () => {
        if (!worker.running) throw new Error(`worker ${name} exited (${worker.exit}): ${worker.output().slice(-2000)}`);
        return worker.output().includes('"ready":true');
      },
      { timeoutMs, intervalMs: 100, message: `worker ${name} joined its group` },
    );
  } catch (error) {
    await worker.kill();
    throw error;
  }
  return worker;
}
