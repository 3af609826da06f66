-- The claim no longer reads rows in backoff (issue 16): it walks each shard's rows that never
-- failed through outbox_fresh_idx, and finds the rows Kafka refused by their due time through
-- outbox_retry_due_idx. Through the one (shard, id) index, every claim of a shard read all of
-- that shard's refused rows waiting for their next try, so a tenant whose rows Kafka refuses
-- slowed every tenant of its relay. Additive: relays older than this migration keep claiming
-- through outbox_shard_id_idx during a rolling upgrade; a later migration drops it.
CREATE INDEX "outbox_fresh_idx" ON "eventbus"."outbox" USING btree ("shard","id") WHERE "eventbus"."outbox"."attempts" = 0;--> statement-breakpoint
CREATE INDEX "outbox_retry_due_idx" ON "eventbus"."outbox" USING btree ("next_attempt_at") WHERE "eventbus"."outbox"."attempts" > 0;