CREATE TABLE "alert_rule_settings" (
	"owner_id" uuid PRIMARY KEY NOT NULL,
	"rules" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"server_id" uuid,
	"rule" text NOT NULL,
	"subject" text NOT NULL,
	"state" text NOT NULL,
	"summary" text NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"since" timestamp with time zone NOT NULL,
	"fired_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metric_rollups" (
	"server_id" uuid NOT NULL,
	"resolution_seconds" integer NOT NULL,
	"bucket" timestamp with time zone NOT NULL,
	"samples" integer NOT NULL,
	"avg" jsonb NOT NULL,
	"min" jsonb NOT NULL,
	"max" jsonb NOT NULL,
	CONSTRAINT "metric_rollups_server_id_resolution_seconds_bucket_pk" PRIMARY KEY("server_id","resolution_seconds","bucket")
);
--> statement-breakpoint
CREATE TABLE "metric_samples_raw" (
	"server_id" uuid NOT NULL,
	"sampled_at" timestamp with time zone NOT NULL,
	"cpu_percent" double precision NOT NULL,
	"memory_used_bytes" bigint NOT NULL,
	"memory_total_bytes" bigint NOT NULL,
	"load1" double precision NOT NULL,
	"load5" double precision NOT NULL,
	"load15" double precision NOT NULL,
	"uptime_seconds" bigint NOT NULL,
	"disks" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_channels" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"target" text NOT NULL,
	"key_id" text NOT NULL,
	"envelope" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "notification_deliveries" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" uuid NOT NULL,
	"channel_id" uuid NOT NULL,
	"alert_id" uuid NOT NULL,
	"event" text NOT NULL,
	"message" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"lease_until" timestamp with time zone,
	"last_error" text,
	"delivered_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
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
DROP INDEX "agents_last_heartbeat_at_idx";--> statement-breakpoint
ALTER TABLE "operations" ADD COLUMN "rollout_id" uuid;--> statement-breakpoint
ALTER TABLE "outbox_events" ADD COLUMN "alerts_checked_at" timestamp with time zone;--> statement-breakpoint
-- Events written before alerting existed are not alerted on after the upgrade.
UPDATE "outbox_events" SET "alerts_checked_at" = now();--> statement-breakpoint
ALTER TABLE "alert_rule_settings" ADD CONSTRAINT "alert_rule_settings_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "metric_rollups" ADD CONSTRAINT "metric_rollups_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_channels" ADD CONSTRAINT "notification_channels_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_channel_id_notification_channels_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."notification_channels"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_deliveries" ADD CONSTRAINT "notification_deliveries_alert_id_alerts_id_fk" FOREIGN KEY ("alert_id") REFERENCES "public"."alerts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollout_servers" ADD CONSTRAINT "rollout_servers_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollout_servers" ADD CONSTRAINT "rollout_servers_server_id_servers_id_fk" FOREIGN KEY ("server_id") REFERENCES "public"."servers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_owner_id_owners_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."owners"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_open_key" ON "alerts" USING btree ("owner_id","rule","subject") WHERE "alerts"."state" in ('pending', 'firing');--> statement-breakpoint
CREATE INDEX "alerts_pending_since_idx" ON "alerts" USING btree ("since") WHERE "alerts"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "metric_rollups_resolution_bucket_idx" ON "metric_rollups" USING btree ("resolution_seconds","bucket");--> statement-breakpoint
CREATE INDEX "metric_samples_raw_server_id_sampled_at_idx" ON "metric_samples_raw" USING btree ("server_id","sampled_at");--> statement-breakpoint
CREATE INDEX "metric_samples_raw_sampled_at_brin" ON "metric_samples_raw" USING brin ("sampled_at");--> statement-breakpoint
CREATE UNIQUE INDEX "notification_channels_owner_id_name_key" ON "notification_channels" USING btree ("owner_id","name");--> statement-breakpoint
CREATE INDEX "notification_deliveries_due_idx" ON "notification_deliveries" USING btree ("next_attempt_at") WHERE "notification_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "notification_deliveries_alert_id_idx" ON "notification_deliveries" USING btree ("alert_id");--> statement-breakpoint
CREATE INDEX "notification_deliveries_channel_id_idx" ON "notification_deliveries" USING btree ("channel_id");--> statement-breakpoint
CREATE INDEX "rollout_servers_rollout_id_batch_idx" ON "rollout_servers" USING btree ("rollout_id","batch");--> statement-breakpoint
CREATE INDEX "rollout_servers_server_id_idx" ON "rollout_servers" USING btree ("server_id");--> statement-breakpoint
CREATE INDEX "rollouts_owner_id_idx" ON "rollouts" USING btree ("owner_id");--> statement-breakpoint
ALTER TABLE "operations" ADD CONSTRAINT "operations_rollout_id_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."rollouts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "operations_rollout_id_idx" ON "operations" USING btree ("rollout_id");--> statement-breakpoint
CREATE INDEX "outbox_events_alerts_unchecked_idx" ON "outbox_events" USING btree ("created_at") WHERE "outbox_events"."alerts_checked_at" is null;