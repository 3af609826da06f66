-- Dead letters byte for byte (issue 15): the DLQ mirror keeps each record's key, value and
-- headers as bytea next to the readable text columns (text and jsonb cannot hold NUL or
-- invalid UTF-8), and records it cannot store at all go to dead_letters_unstorable.
-- Additive only: rows written before this migration keep their text columns and are read
-- through them (see docs/dead-letters.md).
CREATE TABLE "eventbus"."dead_letters_unstorable" (
	"topic" text NOT NULL,
	"partition" integer NOT NULL,
	"offset" bigint NOT NULL,
	"attempts" integer NOT NULL,
	"error_code" text,
	"error_message" text NOT NULL,
	"message_key" "bytea",
	"value" "bytea",
	"header_names" "bytea"[],
	"header_values" "bytea"[],
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dead_letters_unstorable_topic_partition_offset_pk" PRIMARY KEY("topic","partition","offset")
);
--> statement-breakpoint
ALTER TABLE "eventbus"."dead_letters" ADD COLUMN "message_key_bytes" "bytea";--> statement-breakpoint
ALTER TABLE "eventbus"."dead_letters" ADD COLUMN "value_bytes" "bytea";--> statement-breakpoint
ALTER TABLE "eventbus"."dead_letters" ADD COLUMN "header_names" "bytea"[];--> statement-breakpoint
ALTER TABLE "eventbus"."dead_letters" ADD COLUMN "header_values" "bytea"[];--> statement-breakpoint
ALTER TABLE "eventbus"."dead_letters" ADD CONSTRAINT "dead_letters_header_arrays_ck" CHECK (cardinality("eventbus"."dead_letters"."header_names") = cardinality("eventbus"."dead_letters"."header_values"));