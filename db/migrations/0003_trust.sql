CREATE TABLE "provider_accounts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"key_id" text NOT NULL,
	"envelope" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "provider_accounts_id_owner_id_key" UNIQUE("id","owner_id")
);
--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "kafka_key" text;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "pending_token_hash" text;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "pending_token_issued_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "pending_kafka_key" text;--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "kafka_sequence" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "token_prefix" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "last_used_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "ingestion_progress" ADD COLUMN "running_since" timestamp with time zone DEFAULT now();--> statement-breakpoint
ALTER TABLE "servers" ADD COLUMN "provider_account_id" uuid;--> statement-breakpoint
ALTER TABLE "provider_accounts" ADD CONSTRAINT "provider_accounts_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "provider_accounts_owner_id_name_key" ON "provider_accounts" USING btree ("owner_id","name");--> statement-breakpoint
ALTER TABLE "servers" ADD CONSTRAINT "servers_provider_account_owner_fk" FOREIGN KEY ("provider_account_id","owner_id") REFERENCES "public"."provider_accounts"("id","owner_id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "outbox_events_published_idx" ON "outbox_events" USING btree ("published_at") WHERE "outbox_events"."published_at" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "servers_provider_account_id_server_id_key" ON "servers" USING btree ("provider_account_id","provider_server_id");