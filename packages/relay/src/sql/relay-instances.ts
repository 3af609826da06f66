import type pg from 'pg';

/**
 * Records this instance and the shards it holds, for `eventbus outbox status` and logs.
 * Informational only: ownership itself is the advisory locks. Rows of instances silent
 * for a minute are removed by whoever heartbeats next.
 */
export const HEARTBEAT_SQL = `
WITH gone AS (DELETE FROM eventbus.relay_instances WHERE heartbeat_at < now() - interval '1 minute')
INSERT INTO eventbus.relay_instances (instance_id, host, pid, shards) VALUES ($1, $2, $3, $4::smallint[])
ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now(), shards = EXCLUDED.shards`;

export async function heartbeat(client: pg.ClientBase, instanceId: string, host: string, shards: readonly number[]): Promise<void> {
  await client.query(HEARTBEAT_SQL, [instanceId, host, process.pid, shards]);
}

export async function removeInstance(client: pg.ClientBase, instanceId: string): Promise<void> {
  await client.query('DELETE FROM eventbus.relay_instances WHERE instance_id = $1', [instanceId]);
}
