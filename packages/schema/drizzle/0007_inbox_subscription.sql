-- The inbox key gains the subscription, so that two subscriptions of one group that both call
-- ctx.processOnce for an event each run their effect once. '' is the group-wide key:
-- processOnce called without a subscription, and every row written before this migration, which
-- therefore still counts as done for every subscription of its group (the check is in
-- processOnce's statement, packages/consumer/src/inbox.ts).
--
-- Locks: drizzle applies pending migrations in one transaction, so the ACCESS EXCLUSIVE lock the
-- ADD COLUMN takes is held until the commit, through the index build: meanwhile every
-- processOnce, audit and prune on the inbox waits. The ADD COLUMN itself rewrites nothing (a
-- constant default is kept in the catalog, PostgreSQL 11+); the build reads the whole table:
-- 4-7.5 s per million rows on a loaded 2-core machine (docs/operators.md). To keep that wait
-- short on a large inbox, run the ADD COLUMN alone and CREATE UNIQUE INDEX CONCURRENTLY with this
-- name first: both statements below then skip, and the key swap takes milliseconds (it needs no
-- scan: the columns are NOT NULL already).
ALTER TABLE "eventbus"."inbox" ADD COLUMN IF NOT EXISTS "subscription" text DEFAULT '' NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "inbox_group_id_event_id_subscription_pk" ON "eventbus"."inbox" USING btree ("group_id","event_id","subscription");--> statement-breakpoint
ALTER TABLE "eventbus"."inbox" DROP CONSTRAINT "inbox_group_id_event_id_pk", ADD CONSTRAINT "inbox_group_id_event_id_subscription_pk" PRIMARY KEY USING INDEX "inbox_group_id_event_id_subscription_pk";--> statement-breakpoint
-- processOnce of a consumer older than this migration inserts (group_id, event_id) only, so its
-- row gets the group-wide key, and ON CONFLICT then finds only group-wide rows: during a rolling
-- upgrade it would run again an effect that a newer member of the group ran under its
-- subscription's key. This trigger skips such an insert when the event has any row of the group,
-- which is what the old key did. processOnce now checks that in its own statement; the trigger
-- is only for older writers (it fires for group-wide rows only). Unlike a key, it does not wait
-- for a row whose transaction has not committed yet: an event handled by an older and a newer
-- member at the same moment (a rebalance while its handler runs) can run on both. A plain INSERT
-- of a group-wide row whose key exists now inserts nothing instead of failing.
CREATE FUNCTION "eventbus"."inbox_group_wide_once"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM "eventbus"."inbox" i WHERE i.group_id = NEW.group_id AND i.event_id = NEW.event_id) THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END;
$$;--> statement-breakpoint
CREATE TRIGGER "inbox_group_wide_once" BEFORE INSERT ON "eventbus"."inbox"
  FOR EACH ROW WHEN (NEW.subscription = '') EXECUTE FUNCTION "eventbus"."inbox_group_wide_once"();
