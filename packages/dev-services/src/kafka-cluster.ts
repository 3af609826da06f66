import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { KAFKA_LOCAL_SCRIPT, waitForKafka } from './kafka.js';
import { waitFor } from './wait.js';

const run = promisify(execFile);

/** The nodes of the local cluster: each is broker and controller (a 3-voter KRaft quorum). */
export type ClusterNodeId = 1 | 2 | 3;
export const CLUSTER_NODE_IDS: readonly ClusterNodeId[] = [1, 2, 3];

/** Default client port of node 1 (KAFKA_CLUSTER_PORT of scripts/kafka-local.sh); apart from the single broker's 19092. */
export const DEFAULT_CLUSTER_PORT = 29092;

export type KafkaClusterErrorCode =
  /** A node id other than 1, 2, 3. */
  | 'UNKNOWN_NODE'
  /** An option out of range (e.g. basePort). */
  | 'INVALID_OPTION'
  /** scripts/kafka-local.sh failed (a node did not start or stop); the message has its output. */
  | 'SCRIPT_FAILED'
  /** The topic or partition is unknown, or has no leader. */
  | 'NO_LEADER'
  /** Partitions stayed under-replicated past the deadline. */
  | 'ISR_TIMEOUT';

/** Every failure of `KafkaCluster`, with a closed `code`. */
export class KafkaClusterError extends Error {
  override readonly name = 'KafkaClusterError';
  constructor(
    readonly code: KafkaClusterErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options of `KafkaCluster`. */
export interface KafkaClusterOptions {
  /** Client port of node 1; node N listens on basePort + 2(N-1), its controller on the next port. Default 29092. */
  basePort?: number;
  /** The cluster's data directory (KAFKA_CLUSTER_DIR). Default: the script's, `.kafka-local/cluster-<basePort>`. */
  dataDir?: string;
  log?: (line: string) => void;
}

/** A partition whose in-sync replicas are fewer than its replicas. */
export interface UnderReplicatedPartition {
  topic: string;
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
}

/**
 * The 3-node Kafka cluster of `scripts/kafka-local.sh cluster-*` (RF 3, min ISR 2), driven
 * from tests and the fault matrix: start it or reuse a running one, stop, kill and start a node,
 * find a partition's leader, wait for full ISR. `stop()` undoes only what this handle did: it
 * stops the cluster if it started it, otherwise restarts the nodes it stopped. Not safe for two
 * users at once: a test that kills a node would disturb anyone else on the same ports.
 */
export class KafkaCluster {
  readonly basePort: number;
  private readonly dataDir: string | undefined;
  private readonly log: (line: string) => void;
  private startedCluster = false;
  private readonly stoppedNodes = new Set<ClusterNodeId>();
  private adminClient: Admin | undefined;

  constructor(options: KafkaClusterOptions = {}) {
    this.basePort = options.basePort ?? DEFAULT_CLUSTER_PORT;
    if (!Number.isInteger(this.basePort) || this.basePort < 1024 || this.basePort > 65530) {
      throw new KafkaClusterError('INVALID_OPTION', `basePort must be an integer port in 1024-65530, got ${options.basePort}`);
    }
    this.dataDir = options.dataDir;
    this.log = options.log ?? (() => {});
  }

  /** Bootstrap addresses of all three nodes. */
  get brokers(): string[] {
    return CLUSTER_NODE_IDS.map((n) => `127.0.0.1:${this.portOf(n)}`);
  }

  /** Client port of a node. */
  portOf(node: number): number {
    return this.basePort + 2 * (checkNode(node) - 1);
  }

  /** Nodes whose JVM runs (from the script's pid files). */
  async runningNodes(): Promise<ClusterNodeId[]> {
    const { stderr } = await run('bash', [KAFKA_LOCAL_SCRIPT, 'cluster-status'], { env: this.env() }).catch((e: { stderr?: string }) => ({
      stderr: e.stderr ?? '',
    }));
    return CLUSTER_NODE_IDS.filter((n) => new RegExp(`node ${n} running`).test(stderr));
  }

  /** Starts the nodes not running (all three the first time) and waits until all serve with full ISR. */
  async start(): Promise<this> {
    const running = await this.runningNodes();
    if (running.length === CLUSTER_NODE_IDS.length) {
      this.log(`kafka cluster: reusing the running cluster on ${this.brokers.join(',')}`);
    } else {
      this.log(`kafka cluster: starting on ${this.brokers.join(',')} (scripts/kafka-local.sh cluster-start)`);
      await this.script(['cluster-start']);
      // Stopped at the end only if nothing of it ran before: a cluster found half up belongs to someone else.
      this.startedCluster = running.length === 0;
    }
    await waitForKafka(this.brokers.join(','), 60_000);
    return this;
  }

  /** SIGTERM (controlled shutdown: leadership moves first) or SIGKILL (a crash) of one node; returns once its JVM has exited. */
  async stopNode(node: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const id = checkNode(node);
    this.stoppedNodes.add(id);
    await this.script(['cluster-stop-node', String(id), ...(signal === 'SIGKILL' ? ['--kill'] : [])]);
  }

  /** SIGKILL of one node. */
  async killNode(node: number): Promise<void> {
    await this.stopNode(node, 'SIGKILL');
  }

  /**
   * Starts one node and waits until it logs `Kafka Server started`, then (unless `waitForIsr` is
   * false) until no partition of `topics` (all topics when omitted) is under-replicated: the node
   * is back in every ISR.
   */
  async startNode(node: number, options: { waitForIsr?: boolean; topics?: string[]; timeoutMs?: number } = {}): Promise<void> {
    const id = checkNode(node);
    // The ISR wait here uses kafkajs metadata rather than the script's TopicCommand JVM: cheaper on a loaded machine.
    await this.script(['cluster-start-node', String(id), '--no-isr-wait']);
    this.stoppedNodes.delete(id);
    if (options.waitForIsr !== false) await this.waitForFullIsr(options.topics, options.timeoutMs);
  }

  /** The node that leads a partition, as the cluster's metadata says now (a killed leader stays listed until its session expires). */
  async leaderOf(topic: string, partition: number): Promise<ClusterNodeId> {
    const { topics } = await (await this.admin()).fetchTopicMetadata({ topics: [topic] });
    const leader = topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
    if (leader === undefined || !CLUSTER_NODE_IDS.includes(leader as ClusterNodeId)) {
      throw new KafkaClusterError('NO_LEADER', `no leader for ${topic}/${partition} (metadata says ${leader ?? 'no such partition'})`);
    }
    return leader as ClusterNodeId;
  }

  /**
   * Makes `node` the leader of a partition while every node stays up, the way an operator's
   * preferred-leader election does: the replica list is reordered to put `node` first
   * (AlterPartitionReassignments, same replica set, so no data moves), then Kafka's own
   * LeaderElectionCommand elects the preferred replica. Clients with cached metadata still
   * send to the old leader, which answers NOT_LEADER_OR_FOLLOWER on an open connection.
   */
  async moveLeader(topic: string, partition: number, node: number): Promise<void> {
    const to = checkNode(node);
    const admin = await this.admin();
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const replicas = topics[0]?.partitions.find((p) => p.partitionId === partition)?.replicas;
    if (!replicas?.includes(to))
      throw new KafkaClusterError('NO_LEADER', `node ${to} holds no replica of ${topic}/${partition} (replicas [${replicas ?? ''}])`);
    await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition, replicas: [to, ...replicas.filter((r) => r !== to)] }] }] });
    await waitFor(
      async () => (await admin.listPartitionReassignments({ topics: [{ topic, partitions: [partition] }] })).topics.every((t) => t.partitions.length === 0),
      {
        timeoutMs: 30_000,
        message: `reassignment of ${topic}/${partition} done`,
      },
    );
    await this.script(['cluster-elect-preferred', topic, String(partition)]);
    await waitFor(async () => (await this.leaderOf(topic, partition)) === to, { timeoutMs: 30_000, message: `node ${to} leads ${topic}/${partition}` });
  }

  /** Leader of every partition of a topic, by partition id. */
  async leaders(topic: string): Promise<Map<number, number>> {
    const { topics } = await (await this.admin()).fetchTopicMetadata({ topics: [topic] });
    return new Map((topics[0]?.partitions ?? []).map((p) => [p.partitionId, p.leader]));
  }

  /** Partitions of `topics` (all topics when omitted) whose ISR is smaller than their replica set. */
  async underReplicated(topics?: string[]): Promise<UnderReplicatedPartition[]> {
    const metadata = await (await this.admin()).fetchTopicMetadata(topics ? { topics } : undefined);
    return metadata.topics.flatMap((t) =>
      t.partitions
        .filter((p) => p.isr.length < p.replicas.length || p.leader < 0)
        .map((p) => ({ topic: t.name, partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr })),
    );
  }

  /** Waits until every partition of `topics` (all topics when omitted) has its full replica set in sync. */
  async waitForFullIsr(topics?: string[], timeoutMs = 180_000): Promise<void> {
    let last: UnderReplicatedPartition[] = [];
    try {
      await waitFor(async () => (last = await this.underReplicated(topics)).length === 0, { timeoutMs, intervalMs: 500, message: 'full ISR' });
    } catch (error) {
      const sample = last
        .slice(0, 5)
        .map((p) => `${p.topic}/${p.partition} isr [${p.isr}] of [${p.replicas}]`)
        .join('; ');
      throw new KafkaClusterError('ISR_TIMEOUT', `partitions still under-replicated after ${timeoutMs} ms (${last.length}): ${sample}`, { cause: error });
    }
  }

  /** Deletes every topic whose name starts with `prefix` (a scenario's or a test's own); returns how many. */
  async deleteTopicsWithPrefix(prefix: string): Promise<number> {
    if (prefix.length === 0) throw new KafkaClusterError('INVALID_OPTION', 'deleteTopicsWithPrefix needs a non-empty prefix: it would delete every topic');
    const admin = await this.admin();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    return topics.length;
  }

  /** Stops the cluster if this handle started it; otherwise starts again the nodes it stopped. Idempotent. */
  async stop(): Promise<void> {
    const admin = this.adminClient;
    this.adminClient = undefined;
    await admin?.disconnect().catch((error: Error) => this.log(`kafka cluster: admin disconnect failed: ${error.message}`));
    if (this.startedCluster) {
      this.startedCluster = false;
      this.stoppedNodes.clear();
      this.log('kafka cluster: stopping the nodes this run started');
      await this.script(['cluster-stop']);
      return;
    }
    for (const node of [...this.stoppedNodes]) await this.startNode(node, { waitForIsr: false });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  private async admin(): Promise<Admin> {
    if (!this.adminClient) {
      // Retries short: callers poll with their own deadline, and a dead node must not hold a call for kafkajs' 30 s default.
      const admin = new Kafka({
        brokers: this.brokers,
        clientId: 'kafka-cluster-helper',
        logLevel: logLevel.NOTHING,
        requestTimeout: 5000,
        retry: { retries: 3, initialRetryTime: 200 },
      }).admin();
      await admin.connect();
      this.adminClient = admin;
    }
    return this.adminClient;
  }

  private env(): NodeJS.ProcessEnv {
    return {
      // A node SIGKILLed under load recovers its logs before it serves: on 2 busy cores that took longer than the script's 90 s default.
      KAFKA_READY_TIMEOUT_S: '240',
      ...process.env,
      KAFKA_CLUSTER_PORT: String(this.basePort),
      ...(this.dataDir ? { KAFKA_CLUSTER_DIR: this.dataDir } : {}),
    };
  }

  private async script(args: string[]): Promise<string> {
    try {
      const { stdout } = await run('bash', [KAFKA_LOCAL_SCRIPT, ...args], { env: this.env(), maxBuffer: 10 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      // The script's own lines say what failed; the broker log tail after them says why.
      const stderr = e.stderr ?? e.message;
      const own = stderr
        .split('\n')
        .filter((line) => line.startsWith('[kafka-local]'))
        .slice(-8)
        .join('\n');
      throw new KafkaClusterError('SCRIPT_FAILED', `kafka-local.sh ${args.join(' ')} failed:\n${own}\n${stderr.slice(-1500)}`, { cause: error });
    }
  }
}

function checkNode(node: number): ClusterNodeId {
  if (!CLUSTER_NODE_IDS.includes(node as ClusterNodeId)) {
    throw new KafkaClusterError('UNKNOWN_NODE', `unknown node id ${node}: the local cluster has nodes ${CLUSTER_NODE_IDS.join(', ')}`);
  }
  return node as ClusterNodeId;
}
