import { connect } from 'node:net';
import type pg from 'pg';

/**
 * The mirror can write: Postgres answers and its tables exist (eventbus.dead_letters, and
 * eventbus.dlq_mirror_positions of migration 0003: without it every record fails and is
 * retried, so the mirror must not say it is ready).
 */
export async function probeDeadLettersTable(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1 FROM eventbus.dead_letters LIMIT 0');
    await pool.query('SELECT 1 FROM eventbus.dlq_mirror_positions LIMIT 0');
    return true;
  } catch {
    return false;
  }
}

/**
 * Some broker accepts a TCP connection. Deliberately shallow: the consumer itself reconnects
 * and rejoins its group, so readiness only needs to say whether Kafka is reachable at all.
 */
export async function probeBrokers(brokers: readonly string[], timeoutMs: number): Promise<boolean> {
  const attempts = brokers.map(
    (broker) =>
      new Promise<boolean>((resolve) => {
        const at = broker.lastIndexOf(':');
        const socket = connect({ host: broker.slice(0, at), port: Number(broker.slice(at + 1)) });
        const done = (ok: boolean) => {
          socket.destroy();
          resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
      }),
  );
  return (await Promise.all(attempts)).some(Boolean);
}
