import type { ScenarioContext, ScenarioDefinition, Slot } from './harness.js';
import type { WorkloadOptions } from './workload.js';
import { clusterScenarios } from './cluster-scenarios.js';

/** Full run (`pnpm test:faults`) or the short form CI runs (`--short`, and the integration test). */
export interface MatrixSize {
  short: boolean;
}

const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;

function workload(size: MatrixSize, overrides: Partial<WorkloadOptions> = {}): WorkloadOptions {
  return {
    tenants: 60,
    writers: 8,
    ratePerSecond: size.short ? 120 : 100,
    durationMs: size.short ? 3000 : 20_000,
    eventsPerTransaction: 3,
    rollbackShare: 0.04,
    holdShare: 0.02,
    holdMs: size.short ? [200, 800] : [300, 2000],
    ...overrides,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The eight scenarios of issue #7, the Kafka network cut (9), and the 3-node cluster's faults (10-13, cluster-scenarios.ts). */
export function scenarios(size: MatrixSize): ScenarioDefinition[] {
  const s = size.short;
  const base = { relays: 2, workers: 2, broker: 'shared' as const, postgresProxy: false, mirror: false, handlerDelayMs: 2 };
  return [
    {
      ...base,
      id: 1,
      name: 'baseline, no faults',
      workload: workload(size),
      inject: async () => undefined,
    },
    {
      ...base,
      id: 2,
      name: 'relay SIGKILL every few seconds (2 relays)',
      workload: workload(size),
      async inject(ctx) {
        while (ctx.loadRunning) {
          await ctx.pause(s ? 1500 : 3000);
          if (!ctx.loadRunning) break;
          await ctx.restart(pick(ctx.relays), 'SIGKILL', 'relay SIGKILL');
        }
      },
    },
    {
      ...base,
      id: 3,
      name: `Kafka broker stopped ${s ? 8 : 30} s, then started`,
      broker: 'private',
      workload: workload(size, { durationMs: s ? 14_000 : 42_000 }),
      async inject(ctx) {
        await ctx.pause(s ? 3000 : 6000);
        const atMs = Date.now();
        ctx.log('stopping the private broker');
        await ctx.broker!.stop();
        await new Promise((r) => setTimeout(r, s ? 8000 : 30_000));
        ctx.log('starting the private broker');
        await ctx.broker!.start();
        ctx.faults.push({ kind: 'broker stopped', atMs, endMs: Date.now() });
      },
    },
    {
      ...base,
      id: 4,
      name: 'relay Postgres connections terminated; network cut and stall (TCP proxy)',
      postgresProxy: true,
      workload: workload(size, { durationMs: s ? 10_000 : 30_000 }),
      async inject(ctx) {
        const kinds = ['pg_terminate_backend', 'network drop', 'network stall'] as const;
        for (let i = 0; ctx.loadRunning; i++) {
          await ctx.pause(s ? 1200 : 2500);
          if (!ctx.loadRunning) break;
          const kind = kinds[i % kinds.length]!;
          const atMs = Date.now();
          if (kind === 'pg_terminate_backend') {
            const { rows } = await ctx.pool.query(
              `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
               WHERE datname = current_database() AND application_name LIKE 'eventbus-relay%'`,
            );
            ctx.faults.push({ kind, atMs, endMs: Date.now(), detail: `${rows[0].n} connections` });
          } else {
            ctx.postgresProxy!.setMode(kind === 'network drop' ? 'drop' : 'stall');
            await new Promise((r) => setTimeout(r, s ? 1500 : 4000));
            ctx.postgresProxy!.setMode('pass');
            ctx.faults.push({ kind, atMs, endMs: Date.now() });
          }
        }
      },
    },
    {
      ...base,
      id: 5,
      name: 'three relays started and stopped at random (shard takeover)',
      relays: 3,
      workload: workload(size, { durationMs: s ? 10_000 : 30_000 }),
      async inject(ctx) {
        while (ctx.loadRunning) {
          await ctx.pause(s ? 1000 : 2000);
          if (!ctx.loadRunning) break;
          const up = ctx.running(ctx.relays);
          const down = ctx.relays.filter((r) => !up.includes(r));
          const atMs = Date.now();
          if (down.length > 0 && (up.length === 1 || Math.random() < 0.5)) {
            const slot = pick(down);
            await ctx.start(slot);
            ctx.faults.push({ kind: 'relay started', atMs, endMs: Date.now(), detail: slot.name });
          } else {
            const slot = pick(up);
            const how = Math.random() < 0.3 ? 'SIGKILL' : 'SIGTERM';
            slot.busy = true;
            await ctx.halt(slot, how);
            slot.busy = false;
            ctx.faults.push({ kind: `relay ${how}`, atMs, endMs: Date.now(), detail: slot.name });
          }
        }
        await Promise.all(ctx.relays.filter((r) => !r.process?.running).map((r) => ctx.start(r)));
      },
    },
    {
      ...base,
      id: 6,
      name: 'consumers SIGKILLed mid-handler, then a rolling restart',
      workers: s ? 2 : 3,
      handlerDelayMs: 10,
      workload: workload(size, { durationMs: s ? 5000 : 30_000 }),
      async inject(ctx) {
        const killPhaseEnds = Date.now() + ctx.def.workload.durationMs * 0.5;
        while (ctx.loadRunning && Date.now() < killPhaseEnds) {
          await ctx.pause(s ? 1500 : 4000);
          if (!ctx.loadRunning) break;
          await ctx.restart(pick(ctx.workers), 'SIGKILL', 'consumer SIGKILL');
        }
        // Rolling restart: one member at a time, orderly stop, the replacement joins before the next goes.
        for (const slot of ctx.workers as Slot[]) await ctx.restart(slot, 'SIGTERM', 'consumer rolling restart');
      },
    },
    {
      ...base,
      id: 7,
      name: 'poison events (NonRetriableError / always failing)',
      mirror: true,
      controlWorkers: s ? 1 : 2,
      // The mixed poison of three tenants, and one tenant failing every event at 100 (short) or
      // 200 events/s: the other tenants' p99 must stay within 1.5× of the control group's.
      workload: workload(size, { poison: { tenants: 3, share: 0.15 }, poisonFlood: { eventsPerSecond: s ? 100 : 200, eventsPerTransaction: 10 } }),
      inject: async () => undefined,
    },
    {
      ...base,
      id: 8,
      name: `a transaction holds a low id open ${s ? 3 : 30} s while later ones commit`,
      workload: workload(size, { durationMs: s ? 4000 : 34_000, eventsPerTransaction: s ? 4 : 6 }),
      async inject(ctx: ScenarioContext) {
        // Starts with the load, so its outbox id is among the lowest; its tenant writes again only after it commits.
        const atMs = Date.now();
        const held = await ctx.workload.writeOne('long-tx', { holdMs: s ? 3000 : 30_000 });
        if (held.outcome !== 'committed') throw new Error(`the long transaction did not commit (${held.outcome})`);
        const after = ctx.workload.writes.filter((w) => w.outcome === 'committed' && w.committedAtMs! < held.committedAtMs! && w.tenantId !== 'long-tx').length;
        ctx.log(`the long transaction (event ${held.eventId}) committed after ${after} events committed behind it`);
        ctx.faults.push({ kind: 'long transaction', atMs, endMs: held.committedAtMs!, detail: `${held.eventId}; ${after} events committed while it was open` });
        await ctx.workload.writeOne('long-tx');
      },
    },
    {
      ...base,
      id: 9,
      name: `Kafka network cut: connections reset ${s ? 3 : 10} s, then a black hole ${s ? 6 : 35} s, then healed`,
      broker: 'private',
      kafkaProxy: true,
      // Poison and the mirror put the consumers' retry and DLQ publishes and the DlqMirror through the cut too.
      mirror: true,
      workload: workload(size, { durationMs: s ? 30_000 : 95_000, poison: { tenants: 2, share: 0.1 } }),
      async inject(ctx) {
        // The black hole outlasts every Kafka timeout of the clients: the relay's publisher
        // (request 10 s, whole publish 15 s: packages/kafka), kafkajs' default request timeout
        // (30 s: the consumers and the mirror) and the workers' session timeout (6 s). The short
        // form only checks that a reset and a shorter stall are survived.
        const cut = async (mode: 'drop' | 'stall', ms: number, kind: string): Promise<number> => {
          ctx.log(`Kafka proxy: ${mode} for ${ms / 1000} s`);
          const atMs = Date.now();
          ctx.kafkaProxy!.setMode(mode);
          await sleep(ms);
          ctx.kafkaProxy!.setMode('pass');
          const endMs = Date.now();
          ctx.faults.push({ kind, atMs, endMs, detail: `${ctx.kafkaProxy!.accepted} connections through the proxy so far` });
          ctx.log(`Kafka proxy: healed after ${kind}`);
          return endMs;
        };
        await ctx.pause(s ? 3000 : 6000);
        const resetEnd = await cut('drop', s ? 3000 : 10_000, 'Kafka connections reset');
        // The pipeline catches up before the black hole (within a deadline that leaves load after
        // it), so each fault's recovery is its own.
        const passMs = s ? 3000 : 10_000;
        const [caughtUp] = await Promise.all([ctx.waitForDelivery(resetEnd, s ? 15_000 : 30_000), sleep(passMs)]);
        ctx.log(`${caughtUp ? 'caught up' : 'NOT caught up'} after the reset, ${Date.now() - resetEnd} ms after its end`);
        await cut('stall', s ? 6000 : 35_000, 'Kafka black hole');
        // The load goes on after the heal (full form: 14 s at least, ~30 s typically; short: 3 s at
        // least), so recovery is measured under load.
      },
    },
    ...clusterScenarios(size),
  ];
}
