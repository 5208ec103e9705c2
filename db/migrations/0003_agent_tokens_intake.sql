ALTER TABLE "agents" ADD COLUMN "kafka_key" text;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "pending_token_hash" text;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "pending_token_issued_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "pending_kafka_key" text;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "kafka_sequence" bigint DEFAULT 0 NOT NULL;