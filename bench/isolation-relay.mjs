// The relay half of the isolation bench: does one failing or noisy tenant raise the other
// tenants' commit → Kafka latency? Ten phases in one run (a control, then each poisoned phase,
// the same volume written without the trouble, and a control), each on topics of its own and
// with a relay of its own (same options
// every phase, topic creation off), in a process of its own as apps/relay runs (bench/start-relay-process.mjs):
// in the bench's process its batches waited behind the writers' callbacks on one event loop, so
// a tenant writing 10× each other slowed the relay by its writes, not by its rows.
// Its counters (refusals, rows held back, transient failures, published per topic) and its
// CPU come over IPC; dead-lettered and pending rows from Postgres.
//   control       20 healthy tenants, 300 events/s in total (15/s each)
//   too large     the same, plus one tenant writing 100 rows/s that are larger than their topic accepts
//   missing topic the same, plus one tenant writing 100 rows/s whose event type routes to a topic that does not exist
//   hot tenant    the same, plus one tenant writing 10× each healthy tenant (150/s) to the healthy topic
// and after each of the three, its same volume without the trouble: the 10 KB rows to a topic that
// accepts them, the 100 rows/s to a topic that exists, the 450 events/s spread over the 20 healthy
// tenants. On a machine where Postgres, Kafka and the relay share 2 cores, more rows load all
// three whoever writes them: the poisoned phase against its same volume is what the trouble alone costs.
// Measured: for the healthy tenants only, the time from the writer's commit to the arrival at a
// raw kafkajs consumer of the topic, in a process of its own too (bench/isolation-consumer.mjs,
// the consumer half's reference), p50 and p99, and each poisoned phase's ratio to the control
// (the target: p99 ratio <= 1.5). Commit and arrival are read on the wall clock of each process.
import { randomUUID } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import { createTopics, uniqueName } from '@eventbus/dev-services';
import { EventWriter } from '@eventbus/producer';
import { shardForTenant } from '@eventbus/schema';
import { machineLoadWindow, processTicks, showMachineLoad, TICKS_PER_SECOND } from './machine-load.mjs';
import { startConsumerProcess } from './isolation.mjs';
import { startRelayProcess } from './start-relay-process.mjs';

const HEALTHY_TENANTS = 20;
const HEALTHY_RATE = 300;
const PAYLOAD = { text: 'x'.repeat(480), n: 1 }; // ~512 bytes serialized
/** The too-large tenant's topic accepts 8 KB; its rows carry 10 KB (small, so Postgres is not what is measured). */
const TIGHT_TOPIC_LIMIT = 8192;
const BIG_PAYLOAD = { blob: 'x'.repeat(10_000) };

/**
 * The phases: who else writes besides the healthy tenants (`poison`; its event type's family is
 * its topic: `big` is created with TIGHT_TOPIC_LIMIT, `gone` never, `order` is the healthy
 * tenants'), and for each poisoned one the same volume without the trouble (`sameVolume`).
 */
const PHASES = [
  { name: 'control', label: 'control (20 healthy tenants, 300/s)' },
  {
    name: 'tooLarge',
    label: '+ 1 tenant, 100 too-large rows/s',
    poison: { tenantId: 'poison-big', rate: 100, eventType: 'big.blob', payload: BIG_PAYLOAD },
    sameVolume: {
      label: '  same, to a topic that accepts them',
      poison: { tenantId: 'large-ok', rate: 100, eventType: 'large.blob', payload: BIG_PAYLOAD },
    },
  },
  {
    name: 'missingTopic',
    label: '+ 1 tenant, 100/s to a missing topic',
    poison: { tenantId: 'poison-gone', rate: 100, eventType: 'gone.happened', payload: PAYLOAD },
    sameVolume: {
      label: '  same, to a topic that exists',
      poison: { tenantId: 'present-ok', rate: 100, eventType: 'present.happened', payload: PAYLOAD },
    },
  },
  {
    name: 'hotTenant',
    label: '+ 1 tenant writing 10× each other',
    poison: { tenantId: 'hot-tenant', rate: (HEALTHY_RATE / HEALTHY_TENANTS) * 10, eventType: 'order.placed', payload: PAYLOAD },
    sameVolume: { label: '  same 450/s, spread over the 20', healthyRate: HEALTHY_RATE * 1.5 },
  },
];

/**
 * Runs the phases and returns { controls, tooLarge, missingTopic, hotTenant, worstP99Ratio }:
 * each phase with the healthy tenants' latency from commit (p50, p99, max, received/expected),
 * the poisoned ones with their control (the mean of the controls just before and after), the
 * ratios to it, their same-volume phase (`sameVolume`) and what the relay did with the poison.
 */
export async function relayIsolationBench({ brokers, databaseUrl, pool, say, quick }) {
  const seconds = quick ? 6 : 20;
  const warmup = quick ? 2 : 3;
  say(`## relay isolation: healthy tenants' commit → Kafka latency, ${seconds} s per phase after ${warmup} s of warm-up`);
  const db = drizzle(pool);
  const [control, ...poisoned] = PHASES;
  // A control before and after each poisoned phase: a shared machine's load drifts over a
  // run, so each poisoned phase is compared with the mean of the two controls around it.
  const controls = [];
  const result = {};
  const run = async (phase) => {
    await pool.query('DELETE FROM eventbus.outbox'); // rows of the previous phase's poison, still in backoff
    const r = await runPhase({ phase, brokers, databaseUrl, pool, db, seconds, warmup });
    say(`  ${phase.label.padEnd(40)} ${show(r)}`);
    say(`  ${''.padEnd(40)} ${showSplit(r)}`);
    return r;
  };
  controls.push(await run(control));
  for (const phase of poisoned) {
    const r = await run(phase);
    r.sameVolume = await run({ name: `${phase.name}SameVolume`, ...phase.sameVolume });
    controls.push(await run(control));
    const [before, after] = controls.slice(-2);
    r.control = { p50: (before.fromCommit.p50 + after.fromCommit.p50) / 2, p99: (before.fromCommit.p99 + after.fromCommit.p99) / 2 };
    r.ratio = {
      p50: r.fromCommit.p50 / r.control.p50,
      p99: r.fromCommit.p99 / r.control.p99,
      sameVolumeP99: r.sameVolume.fromCommit.p99 / r.control.p99,
      p99ToSameVolume: r.fromCommit.p99 / r.sameVolume.fromCommit.p99,
    };
    // Within the phase, so whatever loaded the machine loaded both lanes alike.
    r.poisonLaneP99Ratio = (r.byLane.poisonLane?.p99 ?? Number.NaN) / (r.byLane.otherLane?.p99 ?? Number.NaN);
    result[phase.name] = r;
  }
  say(
    `\n  ${'phase'.padEnd(40)} ${'control p50/p99 ms'.padStart(19)} ${'poisoned p50/p99 ms'.padStart(20)} ${'p50 ×'.padStart(7)} ${'p99 ×'.padStart(7)} ${'same vol. ×'.padStart(11)} ${'vs same ×'.padStart(9)} ${"X's lane ×".padStart(10)}  poison`,
  );
  for (const phase of poisoned) {
    const r = result[phase.name];
    const poison = `${r.poison.written} written, ${r.poison.published} published, ${r.poison.refusals} refusals, ${r.poison.heldBack} held back, ${r.poison.deadLettered} dead-lettered, phase ${r.wallSeconds.toFixed(0)} s`;
    say(
      `  ${phase.label.padEnd(40)} ${pair(r.control).padStart(19)} ${pair(r.fromCommit).padStart(20)} ${`${r.ratio.p50.toFixed(2)}×`.padStart(7)} ${`${r.ratio.p99.toFixed(2)}×`.padStart(7)} ${`${r.ratio.sameVolumeP99.toFixed(2)}×`.padStart(11)} ${`${r.ratio.p99ToSameVolume.toFixed(2)}×`.padStart(9)} ${`${r.poisonLaneP99Ratio.toFixed(2)}×`.padStart(10)}  ${poison}`,
    );
  }
  const worst = Math.max(...poisoned.map((p) => result[p.name].ratio.p99));
  say(
    `  control: the mean of the controls just before and after each phase; worst p99 ratio ${worst.toFixed(2)}× (target <= 1.5×); same vol. ×: the same-volume phase's p99 / the control's; ` +
      `vs same ×: the poisoned phase's p99 / the same-volume phase's (what the trouble alone costs); X's lane ×: p99 of the healthy tenants in X's lane / the other lane's, same phase\n`,
  );
  return { seconds, warmupSeconds: warmup, healthyTenants: HEALTHY_TENANTS, healthyRate: HEALTHY_RATE, controls, ...result, worstP99Ratio: worst };
}

const show = (r) =>
  `p50 ${r.fromCommit.p50.toFixed(1)} ms  p99 ${r.fromCommit.p99.toFixed(1)} ms  max ${r.fromCommit.max.toFixed(1)} ms  (${r.received}/${r.expected}; ${r.transientFailures} batches rolled back, phase ${r.wallSeconds.toFixed(0)} s); ${showRelay(r.relayProcess)}; ${showMachineLoad(r.machine)}`;
const pair = (x) => `${x.p50.toFixed(1)} / ${x.p99.toFixed(1)}`;
const showSplit = (r) => {
  const lanes = Object.entries(r.byLane).map(
    ([lane, x]) => `${lane === 'poisonLane' ? "X's lane" : lane === 'otherLane' ? 'other lane' : lane.replace(/^.*\//, '')} (${x.tenants} tenants) ${pair(x)}`,
  );
  const c = r.cores;
  return (
    `p50 / p99 ms: commit → send ${pair(r.commitToSend)}, send → observer ${pair(r.sendToObserver)}; by lane: ${lanes.join(', ')}; ` +
    `cores: relay ${c.relay.toFixed(2)} + its backends ${c.relayBackends.toFixed(2)}, writers ${c.writers.toFixed(2)} + their backends ${c.writerBackends.toFixed(2)}, observer ${c.observer.toFixed(2)}`
  );
};
const showRelay = (u) =>
  `relay process ${u.cores.toFixed(2)} cores, event loop ${(u.eventLoopUtilization * 100).toFixed(0)}% busy, ${u.batches} batches of ${u.meanBatchRows.toFixed(1)} rows`;

/** Wall-clock ms with sub-ms precision, comparable with the observer process' clock. */
const now = () => performance.timeOrigin + performance.now();

/** One phase: fresh topics, a relay, a raw consumer of the healthy topic, the writers for its duration. */
async function runPhase({ phase, brokers, databaseUrl, pool, db, seconds, warmup }) {
  const startedAt = Date.now();
  const prefix = `${uniqueName('iso.')}.`;
  const healthyTopic = `${prefix}order`;
  const topics = [{ topic: healthyTopic, numPartitions: 6 }];
  // The poison's topic: `${prefix}gone` is never created (with createTopics off the relay may
  // not create it), `${prefix}big` accepts less than its rows.
  const family = phase.poison?.eventType.split('.')[0];
  if (family === 'big')
    topics.push({ topic: `${prefix}big`, numPartitions: 6, configEntries: [{ name: 'max.message.bytes', value: String(TIGHT_TOPIC_LIMIT) }] });
  else if (family !== undefined && family !== 'gone' && family !== 'order') topics.push({ topic: `${prefix}${family}`, numPartitions: 6 });
  await createTopics(brokers, topics);
  const relay = await startRelayProcess({ databaseUrl, brokers, prefix, createTopics: false });
  // Arrivals of the healthy tenants' events only (a hot tenant's are left out in its process).
  const observer = startConsumerProcess(brokers, prefix, phase.poison?.tenantId ?? 'nobody', 'raw');
  await observer.ready; // it has joined its group: the writers start after it
  const writer = new EventWriter(db);
  const write = (tenantId, eventKey, eventType, payload) => writer.writeEventWithOutbox({ tenantId, eventKey, eventType, payload }).then(now);
  const relayAtStart = await relay.metrics();
  const partiesAtStart = await partyTicks(pool, relay.pid, observer.pid);
  const start = performance.now() + 100;
  const window = machineLoadWindow();
  const tenantOf = new Map();
  const healthy = runAtRate({ rate: phase.healthyRate ?? HEALTHY_RATE, seconds: warmup + seconds, start }, (i, id) => {
    tenantOf.set(id, `healthy-${i % HEALTHY_TENANTS}`);
    return write(tenantOf.get(id), id, 'order.placed', PAYLOAD);
  });
  const poison = phase.poison
    ? runAtRate({ rate: phase.poison.rate, seconds: warmup + seconds, start }, (_, id) =>
        write(phase.poison.tenantId, id, phase.poison.eventType, phase.poison.payload),
      )
    : undefined;
  const [written] = await Promise.all([healthy, poison]);
  const machine = window.end();
  const relayAtEnd = await relay.metrics();
  const partiesAtEnd = await partyTicks(pool, relay.pid, observer.pid);
  const laneOf = await lanesByShard(pool, relay.pid);
  const warmUntil = start + warmup * 1000;
  const measured = [...written].filter(([, w]) => w.due >= warmUntil);
  const arrivals = await collectArrivals(observer, measured);
  await observer.stop();
  const arrived = measured.filter(([id]) => arrivals.has(id));
  const fromCommit = quantiles(arrived.map(([id, w]) => Math.max(0, arrivals.get(id).at - w.committedAt)));
  const out = {
    received: fromCommit.count,
    expected: measured.length,
    fromCommit: { p50: fromCommit.p50, p99: fromCommit.p99, max: fromCommit.max },
    // Split at the record's timestamp (set by the relay's producer as it builds the request, ms
    // resolution): commit → send is the relay's part (waiting for a claim, the claim, encoding),
    // send → observer the broker's acknowledgement and the observer's fetch.
    commitToSend: quantiles(arrived.map(([id, w]) => Math.max(0, arrivals.get(id).sentAt - w.committedAt))),
    sendToObserver: quantiles(arrived.map(([id]) => Math.max(0, arrivals.get(id).at - arrivals.get(id).sentAt))),
    byLane: latencyByLane(arrived, arrivals, tenantOf, laneOf, phase.poison?.tenantId),
    machine,
    relayProcess: relayUse(relayAtStart, relayAtEnd),
    cores: coresUsed(partiesAtStart, partiesAtEnd),
  };
  const counters = await relay.metrics();
  if (phase.poison) out.poison = await poisonOutcome(pool, counters, phase.poison, (await poison).size);
  // Batches rolled back (a publish that timed out, Postgres gone): every tenant of the lane waits.
  out.transientFailures = counters.transientFailures;
  await relay.stop();
  // Longer than warm-up + measured time when the writers fell behind their schedule (a busy
  // machine): poisoned rows then reach more attempts, and the DLQ, within the phase.
  out.wallSeconds = (Date.now() - startedAt) / 1000;
  return out;
}

/** p50, p99, max and count of a list of ms (sorted in place). */
function quantiles(xs) {
  xs.sort((x, y) => x - y);
  const q = (p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;
  return { p50: q(0.5), p99: q(0.99), max: xs.at(-1) ?? Number.NaN, count: xs.length };
}

/** Shard → the relay lane (its instance id) that held it when the writers stopped, from the lanes' heartbeat rows. */
async function lanesByShard(pool, pid) {
  const { rows } = await pool.query('SELECT instance_id, shards FROM eventbus.relay_instances WHERE pid = $1', [pid]);
  const laneOf = new Map();
  for (const { instance_id, shards } of rows) for (const shard of shards) laneOf.set(shard, instance_id);
  return laneOf;
}

/**
 * The healthy tenants' latency from commit split by relay lane. With a poisoned tenant: those
 * whose shard is in its lane (they share its batches) against those of the other lane, in the
 * same phase, on a machine equally busy for both: a product cause shows as a lane slower than the
 * other, a busier machine as both slower. Without one (a control): lane by lane, which shows how far
 * apart two lanes are with nothing to tell them apart.
 */
function latencyByLane(arrived, arrivals, tenantOf, laneOf, poisonTenant) {
  const poisonLane = poisonTenant === undefined ? undefined : laneOf.get(shardForTenant(poisonTenant));
  const groups = new Map();
  const tenants = new Map();
  for (const [id, w] of arrived) {
    const tenant = tenantOf.get(id);
    const lane = laneOf.get(shardForTenant(tenant)) ?? 'unknown';
    const group = poisonLane === undefined ? lane : lane === poisonLane ? 'poisonLane' : 'otherLane';
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(Math.max(0, arrivals.get(id).at - w.committedAt));
    if (!tenants.has(group)) tenants.set(group, new Set());
    tenants.get(group).add(tenant);
  }
  const out = {};
  for (const [group, xs] of [...groups].sort(([a], [b]) => a.localeCompare(b))) out[group] = { tenants: tenants.get(group).size, ...quantiles(xs) };
  return out;
}

/**
 * CPU ticks so far of the phase's parties, from /proc (empty off Linux), by pid: the relay
 * process, the Postgres backends of its lanes (application_name `eventbus-relay …`), the other
 * backends of the bench's database (the writers' pool), this process (the writers) and the observer.
 */
async function partyTicks(pool, relayPid, observerPid) {
  const { rows } = await pool.query('SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()');
  const procs = processTicks();
  const ticks = (pids) => new Map(pids.map((pid) => [pid, procs.get(pid)?.ticks ?? 0]));
  const lane = (r) => r.application_name.startsWith('eventbus-relay');
  return {
    at: performance.now(),
    relay: ticks([relayPid]),
    relayBackends: ticks(rows.filter(lane).map((r) => r.pid)),
    writerBackends: ticks(rows.filter((r) => !lane(r)).map((r) => r.pid)),
    writers: ticks([process.pid]),
    observer: ticks([observerPid]),
  };
}

/**
 * Cores each party used between two partyTicks: a process there at the end counts from the
 * start (or from its own start, when it is new, such as a pool connection opened meanwhile);
 * one that ended in between is not counted.
 */
function coresUsed(before, after) {
  const seconds = (after.at - before.at) / 1000;
  const cores = {};
  for (const key of ['relay', 'relayBackends', 'writers', 'writerBackends', 'observer']) {
    let used = 0;
    for (const [pid, t] of after[key]) used += t - (before[key].get(pid) ?? 0);
    cores[key] = used / TICKS_PER_SECOND / seconds;
  }
  return cores;
}

/**
 * The relay process over the measured window (the writers' time): cores it used, how busy its
 * event loop was, and its batches (how many, mean rows each).
 */
function relayUse(before, after) {
  const wallMs = after.eventLoop.idleMs + after.eventLoop.activeMs - (before.eventLoop.idleMs + before.eventLoop.activeMs);
  const batches = after.batches - before.batches;
  return {
    cores: ((after.cpuSeconds - before.cpuSeconds) * 1000) / wallMs,
    eventLoopUtilization: (after.eventLoop.activeMs - before.eventLoop.activeMs) / wallMs,
    batches,
    meanBatchRows: batches > 0 ? (after.batchRows - before.batchRows) / batches : 0,
  };
}

/** What the relay did with the poisoned tenant's rows during the phase (`relay`: its counters, relay-process.mjs). */
async function poisonOutcome(pool, relay, poison, written) {
  const { rows } = await pool.query(
    `SELECT (SELECT count(*)::int FROM eventbus.dead_letters WHERE tenant_id = $1 AND stage = 'relay') AS dead,
            (SELECT count(*)::int FROM eventbus.outbox o JOIN eventbus.event_log e ON e.id = o.event_id WHERE e.tenant_id = $1) AS pending`,
    [poison.tenantId],
  );
  const published = relay.publishedByTopic;
  return {
    tenantId: poison.tenantId,
    rate: poison.rate,
    written,
    published:
      poison.eventType === 'order.placed' ? written - rows[0].pending : [...published].filter(([t]) => !t.endsWith('order')).reduce((s, [, n]) => s + n, 0),
    refusals: relay.publishFailures,
    // Rows put back unsent while their topic was held (a missing topic): each a delete and re-insert, like a refusal.
    heldBack: relay.heldBack,
    deadLettered: rows[0].dead,
    stillPending: rows[0].pending,
  };
}

/**
 * Calls `send(i, id)` at a steady `rate` for `seconds`, each on the schedule (not after the
 * previous one: an open loop, so a stalled pipeline shows as latency, not as fewer events).
 * Returns id → { due, committedAt }.
 */
async function runAtRate({ rate, seconds, start }, send) {
  const written = new Map();
  const inFlight = new Set();
  const total = Math.round(rate * seconds);
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const id = randomUUID();
    const p = send(i, id)
      .then((committedAt) => written.set(id, { due, committedAt }))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size > 64) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return written;
}

/**
 * Event key → { at: its arrival at the observer, sentAt: its record's timestamp } (wall-clock
 * ms), until every `measured` event arrived or 20 s passed.
 */
async function collectArrivals(observer, measured) {
  const arrivals = new Map();
  const deadline = Date.now() + 20_000;
  for (;;) {
    for (const [key, at, , sentAt] of (await observer.report()).arrivals) if (!arrivals.has(key)) arrivals.set(key, { at, sentAt });
    if (measured.every(([id]) => arrivals.has(id)) || Date.now() >= deadline) return arrivals;
    await new Promise((r) => setTimeout(r, 100));
  }
}
