// Loaded into the relay process by relay-postgres-probe.mjs (`--import`): counts the relay's
// statements by kind and the CPU its backend spent while each ran (/proc/<backend pid>/schedstat
// before the query and when its promise settles), and writes them to stderr at exit as one line,
// `relay-postgres-probe statements {json}`. A statement's figure includes whatever else its
// backend did meanwhile, which for a relay connection is nothing but that statement.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// The pg the relay loads (the workspace's @eventbus/relay resolves it from its own folder).
const pg = createRequire(fileURLToPath(new URL('../packages/relay/package.json', import.meta.url)))('pg');
const statements = {};
const cpuNs = (pid) => {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
};
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function (config, values, callback) {
  const text = typeof config === 'string' ? config : config?.text;
  const key = `[${this.connectionParameters?.application_name?.replace(/ vm-\S+?(\/|$)/, ' $1') ?? ''}] ${String(text ?? '?')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 80)}`;
  statements[key] ??= { count: 0, ns: 0 };
  const s = statements[key];
  s.count++;
  const pid = this.processID;
  const before = pid ? cpuNs(pid) : Number.NaN;
  const result = query.call(this, config, values, callback);
  if (result && typeof result.then === 'function')
    result.then(
      () => {
        const ns = cpuNs(pid) - before;
        if (Number.isFinite(ns)) s.ns += ns;
      },
      () => {},
    );
  return result;
};
process.on('exit', () => process.stderr.write(`relay-postgres-probe statements ${JSON.stringify(statements)}\n`));
