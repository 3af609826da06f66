-- The outbox notification now says which shards got rows: its payload is a 64-bit mask
-- (hex, bit n = shard n) over the rows the statement inserted, read from a transition
-- table. A relay then wakes only the lanes that hold one of those shards, instead of every
-- lane of every instance running a claim per commit (with 2 instances × 2 lanes, 4 claims
-- per committed transaction, 3 of them empty). Still a hint: an empty or unreadable payload
-- wakes every lane, and the fallback poll stays the truth. The payload is 16 characters,
-- far below NOTIFY's 8000-byte limit, and carries no event data.
CREATE OR REPLACE FUNCTION "eventbus"."outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  mask bigint;
BEGIN
  IF coalesce(current_setting('eventbus.notify', true), '') <> 'off' THEN
    SELECT bit_or(1::bigint << shard) INTO mask FROM inserted_rows;
    IF mask IS NOT NULL THEN
      PERFORM pg_notify('eventbus_outbox', to_hex(mask));
    END IF;
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
DROP TRIGGER "outbox_notify" ON "eventbus"."outbox";
--> statement-breakpoint
CREATE TRIGGER "outbox_notify" AFTER INSERT ON "eventbus"."outbox"
  REFERENCING NEW TABLE AS inserted_rows
  FOR EACH STATEMENT EXECUTE FUNCTION "eventbus"."outbox_notify"();
