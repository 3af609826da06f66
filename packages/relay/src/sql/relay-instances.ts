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

/** A relay instance (or lane) as its heartbeat row records it. */
export interface RelayInstanceRow {
  instanceId: string;
  host: string;
  pid: number;
  startedAt: Date;
  heartbeatAgeSeconds: number;
  shards: number[];
}

/** The heartbeat rows, for `eventbus outbox status` and the console. */
export const RELAY_INSTANCES_SQL = `
SELECT instance_id, host, pid, started_at, extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_seconds, shards
FROM eventbus.relay_instances ORDER BY instance_id`;

export async function relayInstances(db: pg.Pool): Promise<RelayInstanceRow[]> {
  const { rows } = await db.query(RELAY_INSTANCES_SQL);
  return rows.map((r) => ({
    instanceId: r.instance_id,
    host: r.host,
    pid: r.pid,
    startedAt: r.started_at,
    heartbeatAgeSeconds: Math.max(0, Number(r.heartbeat_age_seconds)),
    shards: (r.shards as number[]) ?? [],
  }));
}
