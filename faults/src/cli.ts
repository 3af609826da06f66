#!/usr/bin/env node
/**
 * `pnpm test:faults [--short] [--scenario <n>]... [--json <file>]`: runs the fault matrix
 * against the shared Postgres and Kafka (found or started like the tests do; scenarios 10-13
 * on the local 3-node cluster, started for the run unless running), prints the
 * table, writes the JSON, and exits 1 when an invariant is violated (the event ids are in
 * the output), 2 on bad arguments. Progress goes to stderr; the table to stdout.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { ensureKafka, ensurePostgres } from '@eventbus/dev-services';
import { formatResults, runFaultMatrix } from './matrix.js';
import { scenarios } from './scenarios.js';
import { ISOLATION_P99_RATIO } from './checker.js';
import { errorMessage } from '@eventbus/core';

const SCENARIO_IDS = scenarios({ short: false }).map((s) => s.id);
const USAGE = `usage: pnpm test:faults [--short] [--scenario <${SCENARIO_IDS[0]}-${SCENARIO_IDS.at(-1)}>]... [--json <file>] [--private-broker-port <port>] [--cluster-port <port>]`;

function parseArgs(argv: string[]) {
  const options = { short: false, only: [] as number[], json: undefined as string | undefined, privateBrokerPort: 19592, clusterPort: 29092 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--') continue;
    else if (arg === '--short') options.short = true;
    else if (arg === '--scenario') options.only.push(...value().split(',').map(Number));
    else if (arg === '--json') options.json = value();
    else if (arg === '--private-broker-port') options.privateBrokerPort = Number(value());
    else if (arg === '--cluster-port') options.clusterPort = Number(value());
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (options.only.some((n) => !SCENARIO_IDS.includes(n))) throw new Error(`--scenario expects one of ${SCENARIO_IDS.join(', ')}`);
  if (!Number.isInteger(options.privateBrokerPort) || options.privateBrokerPort === 19092)
    throw new Error('--private-broker-port must be a free port other than the shared broker');
  // The cluster uses clusterPort .. clusterPort+5 (3 client ports, 3 controller ports).
  if (!Number.isInteger(options.clusterPort) || (options.clusterPort <= 19093 && options.clusterPort + 5 >= 19092)) {
    throw new Error("--cluster-port must be a port whose 6 ports (clients and controllers of 3 nodes) do not include the shared broker's 19092/19093");
  }
  return options;
}

let options: ReturnType<typeof parseArgs>;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${errorMessage(error)}\n${USAGE}\n`);
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const postgres = await ensurePostgres(log);
// The single broker only when a chosen scenario runs on it: cluster-only runs need none.
const needsSharedBroker = scenarios({ short: options.short }).some((s) => (options.only.length === 0 || options.only.includes(s.id)) && s.broker === 'shared');
const kafka = needsSharedBroker ? await ensureKafka(log) : undefined;
const started = new Date();
try {
  const results = await runFaultMatrix(
    {
      databaseUrl: postgres.address,
      kafkaBrokers: kafka ? kafka.address.split(',') : [],
      privateBrokerPort: options.privateBrokerPort,
      log,
      isolationP99Ratio: ISOLATION_P99_RATIO,
    },
    { short: options.short, only: options.only, clusterPort: options.clusterPort },
  );
  process.stdout.write(`\nFault matrix (${options.short ? 'short' : 'full'}), ${started.toISOString()}, ${cpus().length} cores\n\n${formatResults(results)}\n`);
  if (options.json) {
    writeFileSync(options.json, JSON.stringify({ startedAt: started.toISOString(), short: options.short, cores: cpus().length, results }, null, 2));
    log(`JSON written to ${options.json}`);
  }
  const failed = results.filter((r) => r.violations.length > 0);
  if (failed.length > 0) {
    log(`invariants violated in scenario(s) ${failed.map((r) => r.id).join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  await kafka?.stop();
  await postgres.stop();
}
