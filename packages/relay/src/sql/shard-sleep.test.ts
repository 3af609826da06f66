import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SLEEP_LOCK_NAMESPACE } from '@eventbus/schema/shards';

describe('the sleep flag', () => {
  it('is the lock the outbox trigger tries: the migration names the same namespace as the relay', () => {
    const trigger = readFileSync(new URL('../../../schema/drizzle/0006_notify_sleeping_lanes.sql', import.meta.url), 'utf8');
    expect(trigger).toContain(`pg_try_advisory_xact_lock_shared(${SLEEP_LOCK_NAMESPACE}, shard)`);
  });
});
