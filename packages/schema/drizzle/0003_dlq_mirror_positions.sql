CREATE TABLE "eventbus"."dlq_mirror_positions" (
	"topic" text NOT NULL,
	"partition" integer NOT NULL,
	"next_offset" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dlq_mirror_positions_topic_partition_pk" PRIMARY KEY("topic","partition")
);
