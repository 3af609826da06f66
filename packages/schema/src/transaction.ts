import type pg from 'pg';

/**
 * Runs `work` in a transaction on a client of `pool`: COMMIT if it resolves, ROLLBACK if it
 * throws, and the client back to the pool either way, except a client whose transaction
 * failed, which is discarded (its connection may be the reason).
 *
 * Why not a plain connect/try/release: a checked-out client is not covered by the pool's
 * 'error' listener. When the server ends the session mid-query (57P01 on a failover or a
 * `pg_terminate_backend`), the query rejects with the reason and then the socket's close
 * arrives as an 'error' event which, unheard, crashes the process before it can report what
 * it did. The listener is there only for that late event; the query's rejection is the error.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const ignoreLateError = () => undefined;
  client.on('error', ignoreLateError);
  let failed: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    failed = error instanceof Error ? error : new Error(String(error));
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', ignoreLateError);
    client.release(failed);
  }
}
