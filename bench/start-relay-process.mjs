// A relay in a process of its own (bench/relay-process.mjs with no row count) that relays
// whatever is written until stop(): the relay of the latency and isolation benches. In the
// bench's process its batches waited behind the writers' callbacks and the observers' on one
// event loop, which a deployed relay (apps/relay) never does.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The workspace relay's process (its imports resolve to this repository's packages). */
export const RELAY_PROCESS = fileURLToPath(new URL('./relay-process.mjs', import.meta.url));
/**
 * The V8 flags the relay app runs with (its image's NODE_OPTIONS and its start script), so the
 * benches measure the relay as deployed. BENCH_RELAY_NODE_FLAGS (space-separated) replaces them.
 */
export const RELAY_NODE_FLAGS = (process.env.BENCH_RELAY_NODE_FLAGS ?? '--max-semi-space-size=4').split(' ').filter(Boolean);

/**
 * Starts the relay with its default batch size and the app's flags; resolves once it runs.
 * `createTopics: false`: the relay creates no topics, as RELAY_CREATE_TOPICS=false.
 * `metrics()` asks the process for its counters, CPU and event loop so far (relay-process.mjs,
 * relayMetricsSnapshot), with publishedByTopic as a Map.
 */
export async function startRelayProcess({ databaseUrl, brokers, prefix, idempotent = true, createTopics = true }) {
  const child = fork(RELAY_PROCESS, [databaseUrl, brokers.join(','), prefix, '0', '0'], {
    env: { ...process.env, BENCH_IDEMPOTENT: String(idempotent), BENCH_CREATE_TOPICS: String(createTopics) },
    execArgv: RELAY_NODE_FLAGS,
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  /** Callers of metrics() waiting for an answer, in the order they asked (IPC keeps the order). */
  const waiting = [];
  child.on('message', (m) => {
    if (m.metrics) waiting.shift()?.({ ...m.metrics, publishedByTopic: new Map(m.metrics.publishedByTopic) });
  });
  await new Promise((resolve, reject) => {
    child.on('message', (m) => m.ready && resolve());
    exited.then((code) => reject(new Error(`relay process exited with ${code} before it was ready`)));
  });
  return {
    pid: child.pid,
    metrics() {
      return new Promise((resolve, reject) => {
        waiting.push(resolve);
        child.send({ metrics: true });
        exited.then((code) => reject(new Error(`relay process exited with ${code} before it answered`)));
      });
    },
    async stop() {
      child.send({ stop: true });
      await exited;
    },
  };
}
