import type pg from 'pg';
import { shardForTenant } from '@eventbus/schema/shards';

/**
 * Puts an event already in the EventLog back in the outbox, in its tenant's shard, so the
 * relay publishes it again (a relay-stage dead letter's re-drive, @eventbus/dead-letters'
 * redriveDeadLetter). Takes the caller's client so the insert commits or rolls back with the
 * caller's transaction (the dead letter's status change). ON CONFLICT: an event still waiting in the outbox is
 * already on its way; a second row would publish it twice.
 */
export const REQUEUE_EVENT_SQL = 'INSERT INTO eventbus.outbox (event_id, shard) VALUES ($1::uuid, $2) ON CONFLICT (event_id) DO NOTHING';

/** Inserts the outbox row of an EventLog event (see REQUEUE_EVENT_SQL); nothing when one is there. */
export async function requeueEvent(client: pg.ClientBase, eventId: string, tenantId: string): Promise<void> {
  await client.query(REQUEUE_EVENT_SQL, [eventId, shardForTenant(tenantId)]);
}
