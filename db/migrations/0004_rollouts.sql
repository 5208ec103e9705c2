CREATE TABLE "rollout_servers" (
	"rollout_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"server_id" uuid,
	"server_name" text NOT NULL,
	"batch" integer NOT NULL,
	"state" text DEFAULT 'PENDING' NOT NULL,
	"operation_id" uuid,
	"reason" text DEFAULT '' NOT NULL,
	CONSTRAINT "rollout_servers_rollout_id_position_pk" PRIMARY KEY("rollout_id","position")
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"kind" text NOT NULL,
	"status" text DEFAULT 'RUNNING' NOT NULL,
	"target" jsonb NOT NULL,
	"strategy" jsonb NOT NULL,
	"options" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"workflow_id" text NOT NULL,
	"total" integer NOT NULL,
	"batch_count" integer NOT NULL,
	"current_batch" integer DEFAULT 0 NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "rollout_id" uuid;--> statement-breakpoint
ALTER TABLE "rollout_servers" ADD CONSTRAINT "rollout_servers_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollout_servers" ADD CONSTRAINT "rollout_servers_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "rollout_servers_rollout_id_batch_idx" ON "rollout_servers" USING btree ("rollout_id","batch");--> statement-breakpoint
CREATE INDEX "rollout_servers_server_id_idx" ON "rollout_servers" USING btree ("server_id");--> statement-breakpoint
CREATE INDEX "rollouts_owner_id_idx" ON "rollouts" USING btree ("owner_id");--> statement-breakpoint
ALTER TABLE "operations" ADD CONSTRAINT "operations_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "operations_rollout_id_idx" ON "operations" USING btree ("rollout_id");