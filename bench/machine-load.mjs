// How busy the machine was during a bench phase, and how much of that was not the bench: a
// figure measured on a shared, noisy machine is only worth its ratio if both sides of the ratio
// ran on a machine equally busy. Linux only (/proc); elsewhere the figures are missing.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** Busy and total CPU ticks of the whole machine (all cores), from /proc/stat's first line. */
function machineTicks() {
  const fields = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = fields[3] + (fields[4] ?? 0); // idle + iowait
  // Steal: a virtual machine's CPU time the host gave to other guests; busy, but not here.
  const steal = fields[7] ?? 0;
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal, not guest (counted in user)
  return { busy: total - idle - steal, steal, total };
}

/**
 * Whose processes are the bench's on a Postgres server and among Kafka brokers that other
 * programs use too (other tests on a shared machine): the bench's database (its backends) and
 * the pids of the bench's broker JVMs, once named (setBenchServices). Until then, every
 * Postgres process and every broker JVM is the bench's.
 */
const bench = { database: undefined, brokerPids: undefined };

/**
 * Names the bench's database and brokers (host:port). Returns whether a broker JVM listening on
 * one of those ports was found on this host; when none was (a broker in a container or on
 * another host), every broker JVM still counts as the bench's.
 */
export function setBenchServices({ database, brokers }) {
  bench.database = database;
  const pids = brokerJvmsListeningOn(brokers.map((b) => Number(b.slice(b.lastIndexOf(':') + 1))));
  bench.brokerPids = pids.size > 0 ? pids : undefined;
  return pids.size > 0;
}

/** The Kafka broker JVMs on this host holding a listening socket on one of `ports` (/proc/net/tcp*, /proc/<pid>/fd). */
function brokerJvmsListeningOn(ports) {
  const inodes = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines = [];
    try {
      lines = readFileSync(table, 'latin1').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      // sl local_address rem_address st ... inode: the local port is hex after the colon, 0A is LISTEN.
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && ports.includes(Number.parseInt(f[1].split(':')[1], 16))) inodes.add(`socket:[${f[9]}]`);
    }
  }
  const pids = new Set();
  if (inodes.size === 0) return pids;
  for (const pid of listPids()) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('kafka.Kafka')) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        if (inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) {
          pids.add(pid);
          break;
        }
      }
    } catch {
      // Ended meanwhile, or not ours to read.
    }
  }
  return pids;
}

function listPids() {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return []; // not Linux
  }
}

/**
 * Which bench party a process is, by its program (argv[0], not its arguments, which may hold a
 * postgres:// URL):
 * - 'postgres': a backend of the bench's database. Postgres sets a backend's argv[0] to
 *   `postgres: [cluster: ]user database host(port) activity` (update_process_title, on by
 *   default), so the database is one of its words.
 * - 'postgresServer': a process of the whole server (postmaster, checkpointer, walwriter,
 *   background writer, launchers), whose title has no host(port) or [local] word.
 * - 'postgresOtherDatabases': a backend of another database: another program's, outside the bench.
 * - 'kafka': the bench's broker JVM; 'kafkaOtherBrokers': another broker's, outside the bench.
 */
function partyOf(pid, cmdline) {
  const program = cmdline.split('\0')[0];
  if (/(^|\/)postgres/.test(program)) {
    if (bench.database === undefined) return 'postgres';
    const words = program.trim().split(/\s+/);
    if (words.includes(bench.database)) return 'postgres';
    return words.some((w) => w === '[local]' || /\(\d+\)$/.test(w)) ? 'postgresOtherDatabases' : 'postgresServer';
  }
  if (!cmdline.includes('kafka.Kafka')) return undefined;
  return bench.brokerPids === undefined || bench.brokerPids.has(pid) ? 'kafka' : 'kafkaOtherBrokers';
}

/** Parties of other programs: outside the bench, though a Postgres server or a broker JVM. */
export const OUTSIDE_PARTIES = new Set(['postgresOtherDatabases', 'kafkaOtherBrokers']);

/**
 * Every process on /proc: its parent, its CPU ticks so far (utime + stime), those of its
 * children that ended and were waited for (cutime + cstime) and, for the bench's Postgres
 * processes and Kafka broker JVMs, which party it is (partyOf). Empty where /proc is not there.
 */
export function processTicks() {
  const procs = new Map();
  for (const pid of listPids()) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const party = partyOf(pid, readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
      procs.set(pid, {
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
        endedChildTicks: Number(fields[13]) + Number(fields[14]),
        party,
      });
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return procs;
}

/**
 * CPU ticks used so far by the bench's parties: this process and its descendants, the
 * backends of the bench's database, the Postgres server's own processes and the bench's Kafka
 * broker JVMs (also when another program uses that server or broker: their share counts as the
 * bench's, so "outside" is a lower bound; other databases' backends and other brokers count
 * outside). A child process of the bench that ended counts through the bench's process tree,
 * which the kernel credits with an ended child's ticks once it has waited for it. A backend
 * that ended does not: the postmaster is credited with the ended backends of every database,
 * and on a shared server other programs' connections end all the time, each crediting its
 * whole life's CPU at once (a window's "outside" went to 0 on 2 busy cores with it); the
 * bench's own backends live through its windows.
 */
function benchTicks() {
  const procs = processTicks();
  const inTree = (pid) => {
    for (let p = pid, depth = 0; p > 1 && depth < 50; depth++) {
      if (p === process.pid) return true;
      p = procs.get(p)?.ppid ?? 0;
    }
    return false;
  };
  let ticks = 0;
  for (const [pid, { ticks: t, endedChildTicks, party }] of procs) {
    if (inTree(pid)) ticks += t + endedChildTicks;
    else if (party && !OUTSIDE_PARTIES.has(party)) ticks += t;
  }
  return ticks;
}

/** A snapshot to measure a phase from (`machineLoadSince`). */
export function machineLoadSnapshot() {
  try {
    return { at: performance.now(), machine: machineTicks(), bench: benchTicks() };
  } catch {
    return undefined; // not Linux
  }
}

/**
 * Cores busy since `snapshot`: on the whole machine, and of those, outside the bench (other
 * programs on a shared machine). Undefined where /proc is not there.
 */
export function machineLoadSince(snapshot) {
  const now = machineLoadSnapshot();
  if (!snapshot || !now) return undefined;
  const seconds = (now.at - snapshot.at) / 1000;
  const cores = (now.machine.total - snapshot.machine.total) / TICKS_PER_SECOND / seconds;
  const busy = (now.machine.busy - snapshot.machine.busy) / TICKS_PER_SECOND / seconds;
  const stolen = (now.machine.steal - snapshot.machine.steal) / TICKS_PER_SECOND / seconds;
  const bench = (now.bench - snapshot.bench) / TICKS_PER_SECOND / seconds;
  return { cores: Math.round(cores), busyCores: busy, outsideBenchCores: Math.max(0, busy - bench), stolenCores: stolen };
}

/**
 * The machine's load over one measured window of a bench phase: `const window =
 * machineLoadWindow()` where the window starts, `window.end()` where it ends (the load, or
 * undefined off Linux). Every phase measures its windows with it and prints the result with
 * `showMachineLoad`, so a figure taken on a busy machine shows itself beside the figure.
 */
export function machineLoadWindow() {
  const from = machineLoadSnapshot();
  return { end: () => machineLoadSince(from) };
}

/**
 * Cores taken from the bench by other programs and by the host, above which a window is
 * flagged: on 2 cores, a fifth of the machine gone moves a CPU-bound figure by about as much.
 */
const NOISY_SHARE = 0.2;

/** `machine: 1.62 of 2 cores busy, 0.40 outside the bench, 0.30 stolen by the host` (+ `, NOISY`) */
export function showMachineLoad(load) {
  if (!load) return 'machine load: unknown';
  const noisy = load.outsideBenchCores + load.stolenCores > NOISY_SHARE * load.cores ? ', NOISY' : '';
  return `machine: ${load.busyCores.toFixed(2)} of ${load.cores} cores busy, ${load.outsideBenchCores.toFixed(2)} outside the bench, ${load.stolenCores.toFixed(2)} stolen by the host${noisy}`;
}
