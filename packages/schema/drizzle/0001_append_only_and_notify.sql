-- The EventLog is append-only: history that replay and audits rely on must not change.
-- Retention is the one exception and must say so explicitly in its transaction:
--   SET LOCAL eventbus.allow_event_log_delete = 'on'; DELETE FROM eventbus.event_log WHERE ...
CREATE FUNCTION "eventbus"."event_log_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('eventbus.allow_event_log_delete', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'eventbus.event_log is append-only: % is not allowed (write a new event instead; retention deletes must SET LOCAL eventbus.allow_event_log_delete = ''on'')', TG_OP
    USING ERRCODE = 'restrict_violation';
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "event_log_append_only" BEFORE UPDATE OR DELETE ON "eventbus"."event_log"
  FOR EACH ROW EXECUTE FUNCTION "eventbus"."event_log_append_only"();
--> statement-breakpoint
CREATE TRIGGER "event_log_no_truncate" BEFORE TRUNCATE ON "eventbus"."event_log"
  FOR EACH STATEMENT EXECUTE FUNCTION "eventbus"."event_log_append_only"();
--> statement-breakpoint
-- Wakes the relay. Statement-level, and Postgres folds identical notifications within one
-- transaction, so a bulk insert or a transaction with many events sends one notification.
-- The payload is empty: NOTIFY payloads are limited to 8000 bytes and the relay reads the
-- table anyway (the notification is a hint; the fallback poll is the truth).
-- High-volume writers can opt out per role or transaction with eventbus.notify = 'off'
-- (NOTIFY serialises committing transactions on a global lock) and rely on the relay's poll.
CREATE FUNCTION "eventbus"."outbox_notify"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('eventbus.notify', true), '') <> 'off' THEN
    PERFORM pg_notify('eventbus_outbox', '');
  END IF;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "outbox_notify" AFTER INSERT ON "eventbus"."outbox"
  FOR EACH STATEMENT EXECUTE FUNCTION "eventbus"."outbox_notify"();
