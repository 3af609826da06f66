import type { ClusterNodeId } from '@eventbus/dev-services';
import type { ScenarioContext, ScenarioDefinition } from './harness.js';
import type { MatrixSize } from './scenarios.js';
import type { WorkloadOptions } from './workload.js';

/**
 * Faults of a 3-node Kafka cluster (RF 3, min ISR 2) under load: the broker fails, the
 * project's processes do not. So beside lost = phantom = inversions = 0, no event may reach
 * Kafka twice (`republishAllowance: 'crashes-only'`), and the publish stall is measured.
 * The matrix starts the cluster (scripts/kafka-local.sh cluster-start) when one of these is chosen.
 */
export function clusterScenarios(size: MatrixSize): ScenarioDefinition[] {
  const s = size.short;
  const base = {
    relays: 2,
    workers: 2,
    broker: 'cluster' as const,
    postgresProxy: false,
    mirror: false,
    handlerDelayMs: 2,
    republishAllowance: 'crashes-only' as const,
    measurePublishStall: true,
  };
  // ~300 events/s (150 tx of 1-3 events), the load under which issue 15 saw the loss.
  const load = (durationMs: number, overrides: Partial<WorkloadOptions> = {}): WorkloadOptions => ({
    tenants: 60,
    writers: 8,
    ratePerSecond: 150,
    durationMs,
    eventsPerTransaction: 3,
    rollbackShare: 0.04,
    holdShare: 0.02,
    holdMs: [300, 2000],
    ...overrides,
  });
  const kills = s ? 1 : 2;
  const rounds = s ? 1 : 2;
  const downMs = s ? 20_000 : 60_000;
  return [
    {
      ...base,
      id: 10,
      name: `cluster: leader broker of busy partitions SIGKILLed (${kills}×), restarted 15 s later`,
      workload: load(s ? 45_000 : 90_000),
      async inject(ctx) {
        for (let i = 0; i < kills && ctx.loadRunning; i++) {
          await ctx.pause(s ? 5000 : 8000);
          if (!ctx.loadRunning) break;
          const node = await busiestLeader(ctx);
          const atMs = Date.now();
          ctx.log(`SIGKILL of node ${node}, leader of the most partitions of ${ctx.prefix}order`);
          await ctx.cluster!.killNode(node);
          await sleep(15_000);
          await restartNode(ctx, node, 'broker SIGKILL (leader)', atMs);
        }
      },
    },
    {
      ...base,
      id: 11,
      name: `cluster: rolling restart of the 3 brokers (SIGTERM, back in ISR, next), ${rounds}×`,
      workload: load(s ? 60_000 : 150_000),
      async inject(ctx) {
        for (let round = 1; round <= rounds; round++) {
          await ctx.pause(s ? 3000 : 5000);
          // Every node of a round goes, also when the load ends meanwhile: the cluster is left whole.
          for (const node of [1, 2, 3] as ClusterNodeId[]) {
            const atMs = Date.now();
            ctx.log(`rolling restart round ${round}: SIGTERM of node ${node}`);
            await ctx.cluster!.stopNode(node, 'SIGTERM');
            await restartNode(ctx, node, 'broker rolling restart', atMs);
          }
        }
      },
    },
    {
      ...base,
      id: 12,
      name: `cluster: one broker down ${downMs / 1000} s (SIGTERM), then started`,
      workload: load(downMs + (s ? 20_000 : 40_000)),
      async inject(ctx) {
        await ctx.pause(s ? 5000 : 8000);
        const node = await busiestLeader(ctx);
        const atMs = Date.now();
        ctx.log(`SIGTERM of node ${node} for ${downMs / 1000} s`);
        await ctx.cluster!.stopNode(node, 'SIGTERM');
        await sleep(downMs);
        await restartNode(ctx, node, 'broker down', atMs);
      },
    },
    {
      ...base,
      id: 13,
      name: 'cluster: no fault, first publish to a topic created a moment before',
      freshTopics: true,
      workload: load(s ? 8000 : 15_000),
      // The fault is the topic's creation right before the relays' first send (see `freshTopics`).
      inject: async () => undefined,
    },
  ];
}

/** The node leading the most partitions of the scenario's topic: the busy partitions' leader. */
async function busiestLeader(ctx: ScenarioContext): Promise<ClusterNodeId> {
  const leaders = await ctx.cluster!.leaders(`${ctx.prefix}order`);
  const counts = new Map<number, number>();
  for (const leader of leaders.values()) counts.set(leader, (counts.get(leader) ?? 0) + 1);
  const [node] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0] ?? [1];
  return node as ClusterNodeId;
}

/** Starts the node, waits until it is back in every ISR, and records the fault from `atMs` until then. */
async function restartNode(ctx: ScenarioContext, node: ClusterNodeId, kind: string, atMs: number): Promise<void> {
  ctx.log(`starting node ${node}`);
  await ctx.cluster!.startNode(node);
  ctx.faults.push({ kind, atMs, endMs: Date.now(), detail: `node ${node}` });
  ctx.log(`node ${node} back in the ISR of every partition, ${((Date.now() - atMs) / 1000).toFixed(1)} s after the fault began`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
