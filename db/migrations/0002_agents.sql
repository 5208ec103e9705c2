CREATE TABLE "agents" (
	"server_id" uuid PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"token_issued_at" timestamp with time zone DEFAULT now() NOT NULL,
	"info" jsonb,
	"registered_at" timestamp with time zone,
	"last_heartbeat_at" timestamp with time zone,
	"latest_metrics" jsonb
);
--> statement-breakpoint
CREATE TABLE "ingestion_progress" (
	"instance_id" text PRIMARY KEY NOT NULL,
	"caught_up_to" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metrics_samples" (
	"server_id" uuid NOT NULL,
	"sampled_at" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"metrics" jsonb NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agents" ADD CONSTRAINT "agents_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "metrics_samples" ADD CONSTRAINT "metrics_samples_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agents_last_heartbeat_at_idx" ON "agents" USING btree ("last_heartbeat_at");--> statement-breakpoint
CREATE INDEX "metrics_samples_server_id_sampled_at_idx" ON "metrics_samples" USING btree ("server_id","sampled_at");--> statement-breakpoint
CREATE INDEX "metrics_samples_received_at_idx" ON "metrics_samples" USING btree ("received_at");