CREATE TABLE "audit_chains" (
	"owner_id" uuid PRIMARY KEY NOT NULL,
	"last_seq" bigint NOT NULL,
	"last_hash" text NOT NULL,
	"checkpoint_seq" bigint DEFAULT 0 NOT NULL,
	"checkpoint_hash" text DEFAULT repeat('0', 64) NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"owner_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"id" uuid NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"actor_kind" text NOT NULL,
	"actor_id" text NOT NULL,
	"actor_name" text,
	"action" text NOT NULL,
	"target_ids" text[] NOT NULL,
	"client_address" text,
	"user_agent" text,
	"request_id" text,
	"trace_id" text,
	"detail" text,
	"outcome" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "audit_events_owner_id_seq_pk" PRIMARY KEY("owner_id","seq")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "audit_events_owner_id_id_idx" ON "audit_events" USING btree ("owner_id","id");