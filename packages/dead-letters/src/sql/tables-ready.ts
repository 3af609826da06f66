import type pg from 'pg';

/**
 * The DLQ mirror can write: Postgres answers and its tables exist (eventbus.dead_letters, and
 * eventbus.dlq_mirror_positions of migration 0003: without it every record fails and is
 * retried, so the mirror must not say it is ready).
 */
export async function deadLetterTablesReady(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1 FROM eventbus.dead_letters LIMIT 0');
    await pool.query('SELECT 1 FROM eventbus.dlq_mirror_positions LIMIT 0');
    return true;
  } catch {
    return false;
  }
}
