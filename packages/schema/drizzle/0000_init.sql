CREATE SCHEMA IF NOT EXISTS "eventbus";
--> statement-breakpoint
CREATE TABLE "eventbus"."dead_letters" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "eventbus"."dead_letters_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"dedupe_key" text NOT NULL,
	"stage" text NOT NULL,
	"group_id" text,
	"event_id" text,
	"tenant_id" text,
	"event_type" text,
	"event_key" text,
	"topic" text,
	"partition" integer,
	"offset" text,
	"message_timestamp" timestamp with time zone,
	"message_key" text,
	"value" text,
	"headers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"error_class" text NOT NULL,
	"error_message" text NOT NULL,
	"error_stack" text,
	"attempts" integer NOT NULL,
	"first_failed_at" timestamp with time zone NOT NULL,
	"last_failed_at" timestamp with time zone NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"status_changed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dead_letters_stage_group_ck" CHECK ("eventbus"."dead_letters"."stage" = 'relay' OR "eventbus"."dead_letters"."group_id" IS NOT NULL)
);
--> statement-breakpoint
CREATE TABLE "eventbus"."event_log" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"project_id" text,
	"event_key" text NOT NULL,
	"event_type" text NOT NULL,
	"event_version" integer DEFAULT 1 NOT NULL,
	"payload" jsonb NOT NULL,
	"correlation_id" text NOT NULL,
	"causation_id" text,
	"traceparent" text,
	"tracestate" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "eventbus"."inbox" (
	"group_id" text NOT NULL,
	"event_id" text NOT NULL,
	"processed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_group_id_event_id_pk" PRIMARY KEY("group_id","event_id")
);
--> statement-breakpoint
CREATE TABLE "eventbus"."outbox" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "eventbus"."outbox_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"event_id" uuid NOT NULL,
	"shard" smallint NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"first_failed_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "eventbus"."relay_instances" (
	"instance_id" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"shards" smallint[] DEFAULT '{}'::smallint[] NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_dedupe_key_uq" ON "eventbus"."dead_letters" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "dead_letters_status_created_idx" ON "eventbus"."dead_letters" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "dead_letters_group_idx" ON "eventbus"."dead_letters" USING btree ("group_id","status");--> statement-breakpoint
CREATE UNIQUE INDEX "event_log_tenant_event_key_uq" ON "eventbus"."event_log" USING btree ("tenant_id","event_key");--> statement-breakpoint
CREATE INDEX "event_log_tenant_created_idx" ON "eventbus"."event_log" USING btree ("tenant_id","created_at","id");--> statement-breakpoint
CREATE INDEX "event_log_type_created_idx" ON "eventbus"."event_log" USING btree ("event_type","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_event_id_uq" ON "eventbus"."outbox" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "outbox_shard_id_idx" ON "eventbus"."outbox" USING btree ("shard","id");