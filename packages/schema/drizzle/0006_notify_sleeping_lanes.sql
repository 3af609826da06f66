-- The outbox trigger notifies only for shards whose relay lane sleeps (issue 19). NOTIFY takes
-- a database-wide lock at commit and holds it through the commit's WAL flush, so notifying
-- commits ran one at a time: with 8 writers, ~6 waited on it (`pnpm bench --only producer`).
-- A lane that waits for a notification on a shard holds the shard's sleep lock
-- (pg_advisory_lock(948999 = 0x0e7b07, shard), packages/relay/src/sql/shard-sleep.ts); a lane
-- that is claiming holds none and probes the shard on every claim, so its producers need not
-- notify.
--
-- Per shard the statement inserted into, the trigger tries the sleep lock in shared mode, held
-- until the transaction ends:
-- - refused: a lane sleeps on the shard, so its bit goes into the notification's mask;
-- - granted: no lane sleeps there; no notification. Shared locks never conflict with each
--   other, so writers do not wait on one another here, and no lock is taken at commit. The
--   shared lock, held to the end of the transaction, keeps the lane from going to sleep on the
--   shard before this row is committed (or rolled back): the lane takes the sleep lock, then
--   claims the shard once more, and that claim sees the row. No wake-up is lost in between.
-- A statement that inserts into more than 8 shards (a batch) notifies for all of them without
-- taking locks: its commit lock is shared by many events, and it adds at most 8 locks to the
-- transaction's share of the lock table.
-- A relay older than this migration never takes a sleep lock: its rows are published by its
-- fallback poll (RELAY_POLL_INTERVAL_MS, 1 s by default) or by claims that come back full.
-- `eventbus.notify = 'off'` still skips all of it.
CREATE OR REPLACE FUNCTION "eventbus"."outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  shards smallint[];
  shard smallint;
  mask bigint := 0;
BEGIN
  IF coalesce(current_setting('eventbus.notify', true), '') = 'off' THEN
    RETURN NULL;
  END IF;
  SELECT array_agg(DISTINCT r.shard) INTO shards FROM inserted_rows r;
  IF shards IS NULL THEN
    RETURN NULL;
  END IF;
  FOREACH shard IN ARRAY shards LOOP
    IF cardinality(shards) > 8 OR NOT pg_try_advisory_xact_lock_shared(948999, shard) THEN
      mask := mask | (1::bigint << shard);
    END IF;
  END LOOP;
  IF mask <> 0 THEN
    PERFORM pg_notify('eventbus_outbox', to_hex(mask));
  END IF;
  RETURN NULL;
END;
$$;
