// How busy the machine was during a bench phase, and how much of that was not the bench: a
// figure measured on a shared, noisy machine is only worth its ratio if both sides of the ratio
// ran on a machine equally busy. Linux only (/proc); elsewhere the figures are missing.
import { readdirSync, readFileSync } from 'node:fs';

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

/** Which bench party a process is, by its program (argv[0], not its arguments, which may hold a postgres:// URL). */
function partyOf(cmdline) {
  const program = cmdline.split('\0')[0];
  if (/(^|\/)postgres/.test(program)) return 'postgres';
  return cmdline.includes('kafka.Kafka') ? 'kafka' : undefined;
}

/**
 * Every process on /proc: its parent, its CPU ticks so far (utime + stime), those of its
 * children that ended and were waited for (cutime + cstime) and, for Postgres server processes
 * and Kafka broker JVMs, which of the two it is. Empty where /proc is not there.
 */
export function processTicks() {
  const procs = new Map();
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return procs; // not Linux
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const party = partyOf(readFileSync(`/proc/${pid}/cmdline`, 'latin1'));
      procs.set(Number(pid), {
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
 * CPU ticks used so far by the bench's parties: this process and its descendants, every
 * Postgres server process and every Kafka broker JVM (also when another program uses that
 * Postgres or broker: their share counts as the bench's, so "outside" is a lower bound). A
 * party that ended counts through its parent (a child process of the bench, a Postgres
 * backend through the postmaster), which the kernel credits with an ended child's ticks once
 * it has waited for it.
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
  for (const [pid, { ticks: t, endedChildTicks, party }] of procs) if (party || inTree(pid)) ticks += t + endedChildTicks;
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
