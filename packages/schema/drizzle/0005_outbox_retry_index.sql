-- The claim no longer reads rows in backoff (issue 16): the (shard, id) index the claim walks
-- now holds only rows that never failed, and rows Kafka refused are found by their due time.
-- Before, every claim of a shard read through all of that shard's refused rows waiting for
-- their next attempt, so a tenant whose rows Kafka refuses slowed every tenant of its relay.
-- The outbox is normally near empty, so rebuilding the index takes a moment; with a large
-- backlog, apply it while the relays are stopped or quiet (it locks the outbox while it builds).
DROP INDEX "eventbus"."outbox_shard_id_idx";--> statement-breakpoint
CREATE INDEX "outbox_retry_due_idx" ON "eventbus"."outbox" USING btree ("next_attempt_at") WHERE "eventbus"."outbox"."attempts" > 0;--> statement-breakpoint
CREATE INDEX "outbox_shard_id_idx" ON "eventbus"."outbox" USING btree ("shard","id") WHERE "eventbus"."outbox"."attempts" = 0;