import pg from 'pg';
import { DlqMirror } from '@eventbus/consumer';
import { createTestDatabase, createTopics, PrivateBroker, TcpProxy, uniqueName, waitFor, type KafkaCluster, type TestDatabase } from '@eventbus/dev-services';
import { auditScenario, type ScenarioAudit } from './audit-check.js';
import { checkDelivery, violations, type CheckResult, type DeliveryRecord, type FaultRecord } from './checker.js';
import { type ManagedProcess, startRelay, startWorker } from './processes.js';
import { PublishProgressMonitor, summarizeStalls, type FaultStall } from './publish-progress.js';
import { Workload, type WorkloadOptions } from './workload.js';
import { errorMessage } from '@eventbus/core';

/** Where the matrix runs: the shared services (never stopped) and a port for its private broker. */
export interface MatrixEnvironment {
  databaseUrl: string;
  /** The shared broker; scenarios that stop a broker use a PrivateBroker instead. */
  kafkaBrokers: string[];
  privateBrokerPort: number;
  /** The local 3-node cluster, for scenarios with `broker: 'cluster'` (started by runFaultMatrix when one is chosen). */
  cluster?: KafkaCluster;
  log: (line: string) => void;
  /**
   * Scenario 7's bound on the tenants without poison: their p99 at most this many times the
   * control group's (a violation beyond it). `pnpm test:faults` sets ISOLATION_P99_RATIO; the
   * short form inside the test suite, whose machine runs other test files at the same time,
   * checks a looser bound of its own instead.
   */
  isolationP99Ratio?: number;
}

/** One scenario of the matrix. */
export interface ScenarioDefinition {
  id: number;
  name: string;
  relays: number;
  workers: number;
  /**
   * `private`: a broker of the scenario's own that it may stop (never the shared one).
   * `cluster`: the local 3-node cluster (`env.cluster`, RF 3, min ISR 2), whose nodes the
   * scenario may stop and kill (`ctx.cluster`); the scenario's topics are deleted afterwards.
   */
  broker: 'shared' | 'private' | 'cluster';
  /**
   * No topic is created before the load and no warm-up runs: the relays' publisher creates the
   * topic right before its first send, and the workers start with the load (their own topic
   * creation is idempotent). The first publish to a just-created topic is the fault.
   */
  freshTopics?: boolean;
  /**
   * Republished duplicates allowed: `batch-per-fault` (default) one relay batch per lane per
   * fault; `crashes-only` none unless a project process (relay, worker) exited on its own, then
   * one batch per lane per such exit. For faults of Kafka alone, where no duplicate may appear.
   */
  republishAllowance?: 'batch-per-fault' | 'crashes-only';
  /** Sample publishing progress (outbox) every 100 ms and report the longest stalls (`publishStall`). */
  measurePublishStall?: boolean;
  /** Relays reach Postgres through a TcpProxy the scenario can cut (`ctx.postgresProxy`). */
  postgresProxy: boolean;
  /**
   * Every Kafka client (relays, workers, the DLQ mirror, the harness' own admin calls) reaches
   * the broker through a TcpProxy the scenario can cut (`ctx.kafkaProxy`). Needs the private
   * broker, which advertises the proxy's port so that no client can bypass it.
   */
  kafkaProxy?: boolean;
  /** A DlqMirror runs, so consumer dead letters reach eventbus.dead_letters. */
  mirror: boolean;
  /** Workers of a second group that handles poison events like any other: the latency "without poison", measured at the same time. */
  controlWorkers?: number;
  handlerDelayMs: number;
  workload: WorkloadOptions;
  /** Runs beside the workload; injects faults while `ctx.loadRunning`, and leaves everything repaired when it returns. */
  inject(ctx: ScenarioContext): Promise<void>;
}

/** One relay or worker position: the process in it is replaced on restart. */
export interface Slot {
  name: string;
  kind: 'relay' | 'worker' | 'control';
  process: ManagedProcess | undefined;
  generation: number;
  /** A restart is under way (by the scenario or the supervisor). */
  busy: boolean;
}

export const RELAY_BATCH_SIZE = 100;
/** Claim connections per relay (RELAY_LANES): each may have one batch in flight, so a crash may resend one batch per lane. */
export const RELAY_LANES = 2;

/** What a scenario's `inject` works with. */
export class ScenarioContext {
  readonly faults: FaultRecord[] = [];
  /** Processes that exited without being asked to (crashes), restarted by the supervisor. */
  readonly unexpectedExits: string[] = [];
  readonly relays: Slot[];
  readonly workers: Slot[];
  readonly controls: Slot[];
  loadRunning = true;
  loadDone!: Promise<void>;

  constructor(
    readonly def: ScenarioDefinition,
    readonly env: MatrixEnvironment,
    readonly database: TestDatabase,
    readonly pool: pg.Pool,
    readonly brokers: string[],
    readonly prefix: string,
    readonly groupId: string,
    readonly relayDatabaseUrl: string,
    readonly workload: Workload,
    readonly broker: PrivateBroker | undefined,
    readonly postgresProxy: TcpProxy | undefined,
    readonly kafkaProxy: TcpProxy | undefined,
    readonly cluster: KafkaCluster | undefined,
  ) {
    this.relays = Array.from({ length: def.relays }, (_, i) => ({
      name: `relay-${i + 1}`,
      kind: 'relay' as const,
      process: undefined,
      generation: 0,
      busy: false,
    }));
    this.workers = Array.from({ length: def.workers }, (_, i) => ({
      name: `worker-${i + 1}`,
      kind: 'worker' as const,
      process: undefined,
      generation: 0,
      busy: false,
    }));
    this.controls = Array.from({ length: def.controlWorkers ?? 0 }, (_, i) => ({
      name: `control-${i + 1}`,
      kind: 'control' as const,
      process: undefined,
      generation: 0,
      busy: false,
    }));
  }

  log(line: string): void {
    this.env.log(`  [s${this.def.id}] ${line}`);
  }

  /** Starts the slot's process (a new generation) and waits until it is ready. */
  async start(slot: Slot): Promise<void> {
    slot.generation++;
    const name = `${slot.name}.${slot.generation}`;
    slot.process =
      slot.kind === 'relay'
        ? await startRelay(name, {
            databaseUrl: this.relayDatabaseUrl,
            brokers: this.brokers,
            topicPrefix: this.prefix,
            batchSize: RELAY_BATCH_SIZE,
            lanes: RELAY_LANES,
          })
        : await startWorker(name, {
            databaseUrl: this.database.url,
            brokers: this.brokers,
            topicPrefix: this.prefix,
            handlerDelayMs: this.def.handlerDelayMs,
            ...(slot.kind === 'control' ? { groupId: `${this.groupId}-control`, role: 'control' as const } : { groupId: this.groupId }),
          });
  }

  /** SIGKILL (crash) or SIGTERM (orderly stop) of the slot's process. */
  async halt(slot: Slot, how: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const proc = slot.process;
    if (!proc) return;
    if (how === 'SIGKILL') await proc.kill();
    else await proc.stop();
  }

  /** Halts the slot's process and starts a new one, recording the fault from the halt until the new one is ready. */
  async restart(slot: Slot, how: 'SIGKILL' | 'SIGTERM', kind: string): Promise<void> {
    slot.busy = true;
    try {
      const atMs = Date.now();
      await this.halt(slot, how);
      await this.start(slot);
      this.faults.push({ kind, atMs, endMs: Date.now(), detail: slot.name });
    } finally {
      slot.busy = false;
    }
  }

  allSlots(): Slot[] {
    return [...this.relays, ...this.workers, ...this.controls];
  }

  running(slots: Slot[]): Slot[] {
    return slots.filter((s) => s.process?.running);
  }

  /** Sleeps `ms`, shorter if the workload ends first (fault loops then stop at once). */
  async pause(ms: number): Promise<void> {
    await Promise.race([new Promise((r) => setTimeout(r, ms)), this.loadDone]);
  }

  /**
   * Waits until the main group has received every event the workload saw commit up to `atMs`
   * (poison aside: it ends in the DLQ), or until `timeoutMs` passed; says which. A scenario
   * with consecutive faults waits so between them, so that each fault's recovery is its own
   * and not the sum of both.
   */
  async waitForDelivery(atMs: number, timeoutMs: number): Promise<boolean> {
    const ids = this.workload.writes.filter((w) => w.outcome === 'committed' && w.committedAtMs! <= atMs && !w.poison).map((w) => w.eventId);
    const delivered = async () => {
      const { rows } = await this.pool.query(
        `SELECT count(DISTINCT event_id)::int AS n FROM faults.deliveries WHERE grp = 'main' AND event_id = ANY($1::uuid[])`,
        [ids],
      );
      return Number(rows[0].n) >= ids.length;
    };
    return waitFor(delivered, { timeoutMs, intervalMs: 250 }).then(
      () => true,
      () => false,
    );
  }

  /** Restarts processes that died on their own (a process manager would), and remembers that they did. */
  async supervise(): Promise<void> {
    for (const slot of this.allSlots()) {
      const proc = slot.process;
      if (slot.busy || !proc || proc.running || proc.stopRequested) continue;
      this.unexpectedExits.push(`${proc.name} exited with ${proc.exit}: ${proc.output().slice(-600).replace(/\s+/g, ' ')}`);
      this.log(`${proc.name} exited on its own (${proc.exit}); restarting`);
      slot.busy = true;
      this.start(slot)
        .catch((error: Error) => this.log(`restart of ${slot.name} failed: ${error.message}; retrying`))
        .finally(() => {
          slot.busy = false;
          // A failed start leaves a process that was asked to stop: try again on the next round.
          if (slot.process && !slot.process.running) slot.process.stopRequested = false;
        });
    }
  }
}

/** The figures of one scenario, as printed and written to JSON. */
export interface ScenarioResult extends CheckResult {
  id: number;
  name: string;
  durationMs: number;
  faultKinds: Record<string, number>;
  unexpectedExits: string[];
  violations: string[];
  /** Set when the run itself failed (a process would not start, a deadline passed). */
  error?: string;
  /** `eventbus audit` run after the scenario as a second check (event log vs Kafka vs DLQ table). */
  audit?: ScenarioAudit;
  /** Scenarios with `measurePublishStall`: the longest time events waited in the outbox with none published, overall and around each fault. */
  publishStall?: { maxMs: number; byFault: FaultStall[] };
}

const DELIVERY_TABLES = `
CREATE SCHEMA faults;
CREATE TABLE faults.deliveries (
  id bigserial PRIMARY KEY, grp text NOT NULL, event_id uuid NOT NULL, tenant_id text NOT NULL, seq int NOT NULL, worker text NOT NULL,
  kafka_partition int NOT NULL, kafka_offset text NOT NULL, attempt int NOT NULL, received_at_ms bigint NOT NULL);
CREATE INDEX ON faults.deliveries (event_id);
CREATE TABLE faults.effects (grp text NOT NULL, event_id uuid NOT NULL, worker text NOT NULL);`;

/** Events written before the load to see the whole pipeline work; excluded from the figures. */
const WARMUP_TENANTS = 24;

/** What a scenario sets up before its processes start, released in reverse by `release()`. */
class ScenarioServices {
  broker: PrivateBroker | undefined;
  kafkaProxy: TcpProxy | undefined;
  postgresProxy: TcpProxy | undefined;
  database: TestDatabase | undefined;
  pool: pg.Pool | undefined;
  prefix: string | undefined;

  constructor(
    private readonly def: ScenarioDefinition,
    private readonly env: MatrixEnvironment,
  ) {}

  get cluster(): KafkaCluster | undefined {
    return this.def.broker === 'cluster' ? this.env.cluster : undefined;
  }

  get brokers(): string[] {
    return this.broker ? [this.broker.address] : (this.cluster?.brokers ?? this.env.kafkaBrokers);
  }

  /** The broker (private or cluster), a database with the delivery tables, the topic, and the Postgres proxy. */
  async setUp(): Promise<{ database: TestDatabase; pool: pg.Pool; prefix: string; brokers: string[]; relayDatabaseUrl: string }> {
    const { def, env } = this;
    if (def.kafkaProxy) {
      // Forwarding before the broker starts: the broker's readiness check already goes through it.
      this.kafkaProxy = await new TcpProxy('127.0.0.1', env.privateBrokerPort).start();
    }
    if (def.broker === 'private') {
      this.broker = new PrivateBroker(env.privateBrokerPort, this.kafkaProxy ? { advertisedPort: this.kafkaProxy.port } : {});
      env.log(
        `  [s${def.id}] starting a private broker on 127.0.0.1:${this.broker.port}${this.kafkaProxy ? `, advertised as ${this.broker.address} (the Kafka proxy)` : ''}`,
      );
      await this.broker.start();
    }
    // A node restarted by the previous scenario may still be catching up: start from full ISR.
    await this.cluster?.waitForFullIsr();
    const database = await createTestDatabase(env.databaseUrl, `faults_s${def.id}`);
    this.database = database;
    const pool = new pg.Pool({ connectionString: database.url, max: def.workload.writers + 4, application_name: 'faults-checker' });
    this.pool = pool;
    pool.on('error', () => undefined);
    await pool.query(DELIVERY_TABLES);
    const prefix = `${uniqueName(`faults.s${def.id}.`)}.`;
    this.prefix = prefix;
    const brokers = this.brokers;
    if (!def.freshTopics) {
      // A busy broker may answer the first CreateTopics with a transient error.
      const topic = `${prefix}order`;
      await waitFor(() => createTopics(brokers, [{ topic, numPartitions: 12 }]).then(() => true), {
        timeoutMs: 30_000,
        intervalMs: 500,
        message: 'topic created',
      });
    }
    const ready = { database, pool, prefix, brokers };
    if (!def.postgresProxy) return { ...ready, relayDatabaseUrl: database.url };
    const target = new URL(database.url);
    this.postgresProxy = await new TcpProxy(target.hostname, Number(target.port || 5432)).start();
    const viaProxy = new URL(database.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(this.postgresProxy.port);
    return { ...ready, relayDatabaseUrl: viaProxy.toString() };
  }

  async release(): Promise<void> {
    const { def, env, cluster, prefix } = this;
    await this.postgresProxy?.stop();
    await this.pool?.end().catch(() => undefined);
    // FAULTS_KEEP_DATABASE=1 keeps the scenario's database for a look at faults.deliveries afterwards.
    if (process.env.FAULTS_KEEP_DATABASE === '1') env.log(`  [s${def.id}] kept database ${this.database?.name}`);
    else await this.database?.drop().catch(() => undefined);
    await this.broker?.destroy();
    await this.kafkaProxy?.stop();
    if (cluster && prefix) {
      // The cluster outlives the scenario: its 12-partition RF-3 topics would slow every later restart.
      await cluster.deleteTopicsWithPrefix(prefix).catch((error: Error) => env.log(`  [s${def.id}] deleting topics ${prefix}* failed: ${error.message}`));
    }
  }
}

/**
 * Runs one scenario end to end: a database and topics of its own, relays and consumer
 * workers as processes, the workload and the faults, then waits until everything
 * committed was delivered (or the deadline passed), and checks.
 */
export async function runScenario(def: ScenarioDefinition, env: MatrixEnvironment, drainTimeoutMs: number): Promise<ScenarioResult> {
  const startedAt = Date.now();
  if (def.kafkaProxy && def.broker !== 'private')
    throw new Error(`scenario ${def.id}: kafkaProxy needs broker: 'private' (the shared broker advertises its own port)`);
  if (def.broker === 'cluster' && !env.cluster)
    throw new Error(`scenario ${def.id} needs the 3-node cluster (env.cluster): run it through runFaultMatrix or pnpm test:faults`);
  const services = new ScenarioServices(def, env);
  let mirror: DlqMirror | undefined;
  let ctx: ScenarioContext | undefined;
  let supervisor: NodeJS.Timeout | undefined;
  let monitor: PublishProgressMonitor | undefined;
  try {
    const { database, pool, prefix, brokers, relayDatabaseUrl } = await services.setUp();
    const groupId = uniqueName(`faults-s${def.id}-`);
    const workload = new Workload(pool, def.workload);
    ctx = new ScenarioContext(
      def,
      env,
      database,
      pool,
      brokers,
      prefix,
      groupId,
      relayDatabaseUrl,
      workload,
      services.broker,
      services.postgresProxy,
      services.kafkaProxy,
      services.cluster,
    );
    const c = ctx;
    // With fresh topics the consumers start with the load (below), so the relay's first publish meets a topic just created.
    const startLate = def.freshTopics ? [...c.workers, ...c.controls] : [];
    await startAll(
      c,
      c.allSlots().filter((slot) => !startLate.includes(slot)),
    );
    if (def.mirror) {
      mirror = new DlqMirror({ brokers, connectionString: database.url, routing: { prefix }, groups: [groupId], groupId: uniqueName('faults-mirror-') });
      await mirror.start();
    }
    supervisor = setInterval(() => void c.supervise(), 250);
    c.log(`processes ready after ${Date.now() - startedAt} ms`);

    const groups = c.controls.length > 0 ? 2 : 1;
    if (!def.freshTopics) await warmUp(c, groups, startedAt);
    if (def.measurePublishStall) monitor = new PublishProgressMonitor(pool).start();
    const loadEndMs = await runLoad(c, startLate);
    const drainError = await waitForDrain(c, groups, drainTimeoutMs);
    await waitForSettled(c);
    monitor?.stop();

    const result = await checkScenario(c, groups, loadEndMs);
    c.log(`drained and settled after ${Date.now() - startedAt} ms`);
    const audit = await auditScenario(c.pool, { brokers, prefix, groupId, from: new Date(startedAt), to: new Date() }, result);
    c.log(
      `audit of ${audit.events} events, ${audit.records} records: ${audit.missing} missing, ${audit.phantom} phantom, ${audit.duplicates} duplicated, ${audit.inversions} inversions, ${audit.groupGaps} group gaps in ${audit.elapsedMs} ms`,
    );
    const faultKinds: Record<string, number> = {};
    for (const f of c.faults) faultKinds[f.kind] = (faultKinds[f.kind] ?? 0) + 1;
    const problems = violations(result, env.isolationP99Ratio);
    if (drainError) problems.unshift(drainError);
    problems.push(...audit.disagreements.map((d) => `audit: ${d}`));
    return {
      id: def.id,
      name: def.name,
      durationMs: Date.now() - startedAt,
      ...result,
      faultKinds,
      unexpectedExits: c.unexpectedExits,
      violations: problems,
      audit,
      ...(monitor ? { publishStall: summarizeStalls(monitor.samples, c.faults) } : {}),
    };
  } catch (error) {
    return failedScenario(def, env, startedAt, ctx, error);
  } finally {
    clearInterval(supervisor);
    monitor?.stop();
    if (ctx) await stopProcesses(ctx);
    await mirror?.stop().catch(() => undefined);
    await services.release();
    env.log(`  [s${def.id}] cleaned up after ${Date.now() - startedAt} ms`);
  }
}

/** The result of a scenario that did not run to the end: every check empty, the error as its violation. */
function failedScenario(def: ScenarioDefinition, env: MatrixEnvironment, startedAt: number, ctx: ScenarioContext | undefined, error: unknown): ScenarioResult {
  const message = errorMessage(error);
  env.log(`  [s${def.id}] failed: ${message}`);
  return {
    ...checkDelivery({ writes: [], eventLog: [], deliveries: [], effects: [], deadLettered: [], faults: [], loadEndMs: 0, batchBound: 0 }),
    id: def.id,
    name: def.name,
    durationMs: Date.now() - startedAt,
    faultKinds: {},
    unexpectedExits: ctx?.unexpectedExits ?? [],
    violations: [`the scenario did not run to the end: ${message}`],
    error: message,
  };
}

/** A restart the supervisor began may still be starting a process: lets it finish, then stops every process. */
async function stopProcesses(ctx: ScenarioContext): Promise<void> {
  await waitFor(() => !ctx.allSlots().some((s) => s.busy), { timeoutMs: 60_000, intervalMs: 200 }).catch(() => undefined);
  await Promise.all(ctx.allSlots().map((s) => s.process?.stop(10_000)));
}

/**
 * Starts the slots' processes together and waits for every start to end before failing with the
 * first error: a start still under way when the scenario gave up would leave its process running
 * after the clean-up (which stops only the processes already started).
 */
async function startAll(c: ScenarioContext, slots: readonly Slot[]): Promise<void> {
  const starts = await Promise.allSettled(slots.map((slot) => c.start(slot)));
  const failed = starts.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/** One event per warm-up tenant through the whole pipeline before the clock starts; excluded from the figures. */
async function warmUp(c: ScenarioContext, groups: number, startedAt: number): Promise<void> {
  for (let i = 0; i < WARMUP_TENANTS; i++) await c.workload.writeOne(`warmup-${i}`);
  c.workload.writes.length = 0;
  await waitFor(
    async () =>
      (await count(c.pool, `SELECT count(DISTINCT (grp, event_id))::int AS n FROM faults.deliveries WHERE tenant_id LIKE 'warmup-%'`)) >=
      WARMUP_TENANTS * groups,
    { timeoutMs: 60_000, intervalMs: 200, message: 'warm-up events delivered' },
  );
  await c.pool.query(`DELETE FROM faults.deliveries WHERE tenant_id LIKE 'warmup-%'`);
  c.log(`warm-up delivered after ${Date.now() - startedAt} ms`);
}

/** The workload with the scenario's faults beside it (and the late-started workers); returns when the load ended. */
async function runLoad(c: ScenarioContext, startLate: readonly Slot[]): Promise<number> {
  const { def } = c;
  c.env.log(
    `  [s${def.id}] load: ${def.workload.ratePerSecond} tx/s (1-${def.workload.eventsPerTransaction ?? 1} events each) for ${def.workload.durationMs / 1000} s over ${def.workload.tenants} tenants, ${def.workload.writers} writers`,
  );
  c.loadDone = c.workload.run().finally(() => {
    c.loadRunning = false;
  });
  const injecting = def.inject(c);
  const lateStarts = startAll(c, startLate);
  await c.loadDone;
  const loadEndMs = Date.now();
  await injecting;
  await lateStarts;
  return loadEndMs;
}

/** Waits until everything committed arrived: delivered, or (poison) in the DLQ table. Returns the timeout's message if it did not. */
async function waitForDrain(c: ScenarioContext, groups: number, drainTimeoutMs: number): Promise<string | undefined> {
  const pending = `
    SELECT count(*)::int AS n FROM eventbus.event_log e
    WHERE e.tenant_id NOT LIKE 'warmup-%'
      AND ((NOT EXISTS (SELECT 1 FROM faults.deliveries d WHERE d.event_id = e.id AND d.grp = 'main')
            AND NOT EXISTS (SELECT 1 FROM eventbus.dead_letters q WHERE q.event_id = e.id::text))
        OR (${groups} = 2 AND NOT EXISTS (SELECT 1 FROM faults.deliveries d WHERE d.event_id = e.id AND d.grp = 'control')))`;
  return waitFor(async () => (await count(c.pool, pending)) === 0, {
    timeoutMs: drainTimeoutMs,
    intervalMs: 250,
    message: 'every committed event delivered',
  }).then(
    () => undefined,
    (error: Error) => error.message,
  );
}

/** Lets anything still in flight land before duplicates are counted: the outbox empty and the deliveries steady for a second. */
async function waitForSettled(c: ScenarioContext): Promise<void> {
  let lastCount = -1;
  let steadySince = Date.now();
  await waitFor(
    async () => {
      const n = await count(c.pool, 'SELECT (SELECT count(*) FROM faults.deliveries) + (SELECT count(*) FROM eventbus.outbox) AS n');
      if (n !== lastCount) {
        lastCount = n;
        steadySince = Date.now();
      }
      return Date.now() - steadySince > 1000 && (await count(c.pool, 'SELECT count(*)::int AS n FROM eventbus.outbox')) === 0;
    },
    { timeoutMs: 20_000, intervalMs: 250, message: 'deliveries settled' },
  ).catch(() => undefined);
}

/** Reads what the scenario wrote and what arrived, and checks it (checker.ts). */
async function checkScenario(c: ScenarioContext, groups: number, loadEndMs: number): Promise<CheckResult> {
  const { def, pool } = c;
  return checkDelivery({
    writes: c.workload.writes,
    eventLog: (
      await pool.query(
        `SELECT id::text AS "eventId", tenant_id AS "tenantId", (payload->>'seq')::int AS seq, payload->>'poison' AS poison
         FROM eventbus.event_log WHERE tenant_id NOT LIKE 'warmup-%'`,
      )
    ).rows,
    deliveries: await deliveries(pool, 'main'),
    controlDeliveries: groups === 2 ? await deliveries(pool, 'control') : undefined,
    effects: (
      await pool.query(
        `SELECT event_id::text AS "eventId" FROM faults.effects f WHERE grp = 'main' AND NOT EXISTS (SELECT 1 FROM eventbus.event_log e WHERE e.id = f.event_id AND e.tenant_id LIKE 'warmup-%')`,
      )
    ).rows,
    deadLettered: (await pool.query(`SELECT event_id FROM eventbus.dead_letters WHERE stage = 'consumer' AND group_id = $1`, [c.groupId])).rows.map(
      (r) => r.event_id as string,
    ),
    faults: c.faults,
    loadEndMs,
    batchBound: RELAY_BATCH_SIZE * RELAY_LANES,
    ...(def.republishAllowance === 'crashes-only' ? { republishBound: c.unexpectedExits.length * RELAY_BATCH_SIZE * RELAY_LANES } : {}),
  });
}

async function deliveries(pool: pg.Pool, grp: 'main' | 'control'): Promise<DeliveryRecord[]> {
  const { rows } = await pool.query(
    `SELECT id::int, event_id::text AS "eventId", tenant_id AS "tenantId", seq, worker, kafka_partition AS partition,
            kafka_offset AS offset, attempt, received_at_ms::float8 AS "receivedAtMs" FROM faults.deliveries WHERE grp = $1`,
    [grp],
  );
  return rows as DeliveryRecord[];
}

async function count(pool: pg.Pool, query: string): Promise<number> {
  return Number((await pool.query(query)).rows[0].n);
}
